"""The dead-letter queue, as a replay takes events off it.

Dead letters are listed from the event log (service/admin/dead_letters.py: the worker logs
every event it dead-letters, status `dead_lettered`); the queue is read only to replay.
RabbitMQ has no "peek": a replay reads the queue with basic.get, holding every message
unacknowledged; a replayed one is published back to the events exchange (its original id,
body and routing key; only the handlers that failed run again) and acked once the broker
confirmed it; every other message is returned to the queue untouched when it finishes.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from service.bus.broker import Broker
from service.worker import policy

REPLAY_TIMEOUT_S = 10.0
_DURATION = re.compile(r"^([0-9]{1,9}(?:\.[0-9]{1,6})?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as read from the queue."""

    message: AbstractIncomingMessage

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})

    @property
    def id(self) -> str:
        """The message's id; lacking one, its CloudEvent's (the id the event log has)."""
        return self.message.message_id or str(self._attribute("id") or "")

    @property
    def type(self) -> str:
        return str(self._attribute("type") or self.message.routing_key or "")

    def _attribute(self, name: str) -> Any:
        try:
            return orjson.loads(self.message.body).get(name)
        except (orjson.JSONDecodeError, AttributeError):
            return None

    @property
    def failed_handlers(self) -> list[str]:
        """The handlers to run again on replay; empty: all of them. A message the broker
        dead-lettered keeps the handler list of the retry it was, if it was one."""
        headers = self.headers
        failed = headers.get("x-bridge-failed-handlers") or headers.get(policy.HANDLERS) or []
        return [str(h) for h in failed] if isinstance(failed, list | tuple) else []


def _bookkeeping(header: str) -> bool:
    return header.startswith(("x-bridge-", "x-first-death-", "x-last-death-")) or (
        header == "x-death"
    )


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`2h`, `30m`, `1d` ago, or an ISO 8601 time."""
    match = _DURATION.match(value.strip())
    now = now or datetime.now(UTC)
    try:
        if match:
            return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"not an age (30m, 2h, 1d) or an ISO 8601 time: {value[:40]!r}") from None


_READERS: weakref.WeakKeyDictionary[Broker, asyncio.Lock] = weakref.WeakKeyDictionary()


def readers_lock(broker: Broker) -> asyncio.Lock:
    """Held while a replay holds the dead-letter queue's messages (until released): in one
    process, two replays and a queue depth never see each other's holdings."""
    return _READERS.setdefault(broker, asyncio.Lock())


class DeadLetterQueue:
    """Reads the dead-letter queue on its own channel; returns what it did not take."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._channel: AbstractChannel | None = None
        self._lock = readers_lock(broker)
        self._holding = False

    async def read(self, ids: Iterable[str], limit: int = 10_000) -> list[DeadLetter]:
        """Hold up to `limit` messages (until `release`); return those with one of `ids`."""
        wanted = frozenset(ids)
        assert self.broker.connection is not None
        await self._lock.acquire()
        self._holding = True
        self._channel = channel = await self.broker.connection.channel()
        queue = await channel.get_queue(self.broker.settings.dead_letter_queue)
        held: list[DeadLetter] = []
        while len(held) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append(DeadLetter(message))
        return [letter for letter in held if letter.id in wanted]

    async def release(self) -> None:
        """Return every message not acked to the queue."""
        try:
            if self._channel is not None:
                await self._channel.close()
        finally:
            self._channel = None
            if self._holding:
                self._holding = False
                self._lock.release()

    async def replay(self, letter: DeadLetter) -> None:
        """Publish the event back to the events exchange, then take it off this queue."""
        # A fresh start: without our bookkeeping, and without the broker's death records
        # (which keep the first death's time, so a second death would look old).
        headers = {k: v for k, v in letter.headers.items() if not _bookkeeping(str(k))}
        failed = letter.failed_handlers
        if failed and str(letter.headers.get("x-bridge-error", "")).startswith(
            policy.NO_HANDLER_ERRORS
        ):
            failed = []
        if failed:
            headers[policy.HANDLERS] = [str(h) for h in failed]
        headers["x-bridge-replayed-at"] = datetime.now(UTC).isoformat()
        await self.broker.publish(
            letter.message.body,
            routing_key=letter.type,
            message_id=letter.id,
            timeout_s=REPLAY_TIMEOUT_S,
            headers=headers,
        )
        await letter.message.ack()


async def replay_all(
    dlq: DeadLetterQueue,
    letters: Iterable[DeadLetter],
    on_progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Replay each letter in order; return the ids replayed."""
    letters = list(letters)
    done: list[str] = []
    for letter in letters:
        await dlq.replay(letter)
        done.append(letter.id)
        if on_progress is not None:
            on_progress(len(done), len(letters))
    return done
