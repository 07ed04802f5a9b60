"""Dead letters: list, show and replay what the worker gave up on.

    python -m service dead-letters list   [--id ID] [--type PATTERN] [--since 2h|ISO-TIME]
    python -m service dead-letters show   [filters]
    python -m service dead-letters replay [filters] [--yes]

RabbitMQ has no "peek": the queue is read with basic.get and every message is held
unacknowledged; a replayed one is published back to the events exchange (its original id,
body and routing key; only the handlers that failed run again) and acked once the broker
confirmed it; every other message is returned to the queue untouched when we finish.
"""

from __future__ import annotations

import asyncio
import re
import sys
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from service.bus.broker import Broker
from service.bus.topics import topic_matches
from service.terminal import visible, visible_json
from service.worker import policy

REPLAY_TIMEOUT_S = 10.0
BROKER_WAIT_S = 30.0
_SHOW = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
_DURATION = re.compile(r"^([0-9]{1,9}(?:\.[0-9]{1,6})?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Filters:
    ids: frozenset[str] = frozenset()
    type_pattern: str | None = None
    since: datetime | None = None

    def match(self, letter: DeadLetter) -> bool:
        if self.ids and letter.id not in self.ids:
            return False
        if self.type_pattern and not topic_matches(self.type_pattern, letter.type):
            return False
        return self.since is None or (letter.dead_at is not None and letter.dead_at >= self.since)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as read from the queue."""

    message: AbstractIncomingMessage

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})

    @property
    def id(self) -> str:
        return self.message.message_id or ""

    @property
    def type(self) -> str:
        try:
            kind = orjson.loads(self.message.body).get("type")
        except (orjson.JSONDecodeError, AttributeError):
            kind = None
        return str(kind or self.message.routing_key or "")

    @property
    def dead_at(self) -> datetime | None:
        """When the worker dead-lettered it; for one the broker dead-lettered (the worker
        rejected it, or it went over the delivery limit), the time in its `x-death`."""
        raw = self.headers.get("x-bridge-dead-lettered-at")
        try:
            return datetime.fromisoformat(str(raw)) if raw else self._death_time()
        except ValueError:
            return None

    @property
    def failed_handlers(self) -> list[str]:
        """The handlers to run again on replay; empty: all of them. A message the broker
        dead-lettered keeps the handler list of the retry it was, if it was one."""
        headers = self.headers
        failed = headers.get("x-bridge-failed-handlers") or headers.get(policy.HANDLERS) or []
        return [str(h) for h in failed] if isinstance(failed, list | tuple) else []

    def _death_time(self) -> datetime | None:
        deaths = self.headers.get("x-death")
        latest = deaths[0] if isinstance(deaths, list | tuple) and deaths else None
        moment = latest.get("time") if isinstance(latest, dict) else None
        if not isinstance(moment, datetime):
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def summary(self) -> dict[str, Any]:
        headers = self.headers
        dead_at = self.dead_at
        error = headers.get("x-bridge-error") or headers.get(policy.LAST_ERROR)
        return {
            "id": self.id,
            "type": self.type,
            "attempts": headers.get("x-bridge-attempts"),
            "dead_lettered_at": dead_at.isoformat() if dead_at else None,
            "failed_handlers": self.failed_handlers,
            "error": error or _death_reason(headers),
        }


def _bookkeeping(header: str) -> bool:
    return header.startswith(("x-bridge-", "x-first-death-", "x-last-death-")) or (
        header == "x-death"
    )


def _death_reason(headers: dict[str, Any]) -> str | None:
    """Why the broker dead-lettered a message, from `x-death`."""
    deaths = headers.get("x-death")
    latest = deaths[0] if isinstance(deaths, list | tuple) and deaths else None
    if not isinstance(latest, dict):
        return None
    return f"dead-lettered by the broker ({latest.get('reason')}) from {latest.get('queue')}"


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
    """Held while the dead-letter queue's messages are taken (read, until released): in
    one process, a listing, a replay and a queue depth never see each other's holdings."""
    return _READERS.setdefault(broker, asyncio.Lock())


class DeadLetterQueue:
    """Reads the dead-letter queue on its own channel; returns what it did not take."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._channel: AbstractChannel | None = None
        self._lock = readers_lock(broker)
        self._holding = False

    async def read(self, filters: Filters, limit: int = 10_000) -> list[DeadLetter]:
        """Hold up to `limit` messages (until `release`); return those matching `filters`."""
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
        return [letter for letter in held if filters.match(letter)]

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


def progress(done: int, total: int, out: TextIO = sys.stderr) -> None:
    """A one-line progress bar, for large replays."""
    width = 30
    filled = width * done // max(total, 1)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        out.write("\n")
    out.flush()


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


async def run_command(
    broker: Broker, command: str, filters: Filters, out: TextIO = sys.stdout
) -> int:
    """The CLI: list, show or replay; returns the exit code."""
    await broker.start()
    try:
        await broker.wait_ready(BROKER_WAIT_S)
    except TimeoutError:
        await broker.close()
        url = broker.settings.safe_url
        sys.stderr.write(f"the message broker ({url}) did not answer in {BROKER_WAIT_S:g} s\n")
        return 1
    dlq = DeadLetterQueue(broker)
    try:
        letters = await dlq.read(filters)
        if command == "replay":
            bar = progress if len(letters) > 20 else None
            replayed = await replay_all(dlq, letters, bar)
            out.write(f"replayed {len(replayed)} dead letter(s)\n")
            for event_id in replayed:
                out.write(f"  {visible(event_id)}\n")
            return 0
        for letter in letters:
            out.write(_render(letter, full=command == "show") + "\n")
        out.write(f"{len(letters)} dead letter(s) match\n")
        return 0
    finally:
        await dlq.release()
        await broker.close()


def _render(letter: DeadLetter, full: bool) -> str:
    """One line (`list`) or the event in full (`show`); event data shown, never obeyed."""
    summary = letter.summary()
    if not full:
        shown = {name: visible(str(value)) for name, value in summary.items()}
        return (
            f"{shown['id']}  {shown['type']}  attempts={shown['attempts']}  "
            f"at={shown['dead_lettered_at']}  error={shown['error']}"
        )
    try:
        body: Any = orjson.loads(letter.message.body)
    except orjson.JSONDecodeError:
        body = letter.message.body.decode("utf-8", errors="replace")
    text = orjson.dumps({**summary, "event": body}, option=_SHOW, default=str).decode()
    return visible_json(text)
