"""Journal: writes each delivery of an event into the event log (status + one row per attempt).

Written after the handlers ran and before the message is acked or rejected, so every
event a worker settled is in the log, whatever crashes in between: a worker killed
before the write never acked, and RabbitMQ redelivers the event. While the store is
unreachable the write is tried again, with backoff, and the message waits unacked (the
worker's prefetch bounds how many do). A row the store refuses as data is written again
without its payload and with its text made storable; it must never stop a message for
good, nor let one be acked unlogged while the store is merely down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from service.cloudevent import CloudEvent
from service.settings import EventLogSettings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.store.outages import unreachable, until_reachable
from service.worker.policy import Failure

log = structlog.get_logger("service.worker")
MAX_ATTRIBUTES_BYTES = 16_384  # a CloudEvent's context attributes kept for replay, at most

Rows = tuple[LoggedEvent, list[Attempt], bytes | None]


@dataclass(frozen=True)
class Ran:
    """One handler's run on one delivery."""

    handler: str
    failure: Failure | None
    duration_ms: float
    skipped: bool = False  # idempotent, and already done


@dataclass(frozen=True)
class Entry:
    """One delivery of an event, to be logged."""

    event: CloudEvent
    body_size: int
    attempt: int
    ran: list[Ran] = field(default_factory=list)


def status_of(ran: list[Ran], fates: dict[str, str]) -> str:
    """The event's status after this delivery."""
    if not ran:
        return "unhandled"
    if "retry" in fates.values():
        return "retrying"
    return "dead_lettered" if fates else "handled"


class Journal:
    def __init__(self, database: Database, settings: EventLogSettings) -> None:
        self.database = database
        self.settings = settings

    async def write(self, entry: Entry, fates: dict[str, str]) -> None:
        """Record this delivery; return once it is recorded, however long the store is away."""
        if not self.settings.enabled:
            return
        rows = self._rows(entry, fates)
        await until_reachable(lambda: self._record(rows), "eventlog.write")

    async def _record(self, rows: Rows) -> None:
        """Write the rows; raise only while the store is unreachable."""
        for attempt, written in enumerate((rows, _storable(rows))):
            try:
                await self.database.events.record(*written)
                return
            except Exception as exc:
                if unreachable(exc):
                    raise
                refused = "eventlog.row_refused" if attempt == 0 else "eventlog.write_refused"
                log.error(refused, error=repr(exc)[:500])

    def _rows(self, entry: Entry, fates: dict[str, str]) -> Rows:
        event, ran, attempt, now = entry.event, entry.ran, entry.attempt, time.time()
        errors = [r.failure.error for r in ran if r.failure is not None]
        head = LoggedEvent(
            id=event.id, type=event.type, source=event.source, subject=event.subject,
            time=event.time or None, received_at=now, updated_at=now,
            status=status_of(ran, fates), attempts=attempt,
            last_error=errors[0][:2000] if errors else None,
            attributes=_attributes(event), accepted_at=accepted_at(event),
        )  # fmt: skip
        tries = [
            Attempt(r.handler, attempt, _outcome(r, fates), r.failure.error if r.failure else None,
                    now, round(r.duration_ms, 2))
            for r in ran
        ]  # fmt: skip
        small = entry.body_size <= self.settings.max_data_bytes
        return head, tries, orjson.dumps(event.data) if small else None


def _attributes(event: CloudEvent) -> dict[str, Any] | None:
    """The event's context attributes as on the wire, to rebuild it on replay; None when
    they are too large to keep (or not JSON)."""
    attributes = event.attributes()
    try:
        size = len(orjson.dumps(attributes))
    except TypeError:
        return None
    return attributes if size <= MAX_ATTRIBUTES_BYTES else None


def accepted_at(event: CloudEvent) -> float | None:
    """When the receiver accepted the event: its `receivedat` extension (unix seconds)."""
    raw = event.extensions.get("receivedat")
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _storable(rows: Rows) -> Rows:
    """The rows without the payload or the attributes, their text without NULs or lone
    surrogates."""
    head, tries, _ = rows
    head = replace(
        head, type=str(_text(head.type)), source=str(_text(head.source)),
        subject=_text(head.subject), time=_text(head.time), last_error=_text(head.last_error),
        attributes=None,
    )  # fmt: skip
    tries = [replace(t, handler=str(_text(t.handler)), error=_text(t.error)) for t in tries]
    return head, tries, None


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _outcome(ran: Ran, fates: dict[str, str]) -> str:
    if ran.skipped:
        return "skipped"
    return fates.get(ran.handler, "ok") if ran.failure is not None else "ok"


PRUNE_EVERY_S = 3600.0


async def prune_forever(
    database: Database, settings: EventLogSettings, stop: asyncio.Event
) -> None:
    """Delete events older than the retention, at start and then hourly, until `stop`."""
    while not stop.is_set():
        cutoff = time.time() - settings.retention_days * 86400
        try:
            deleted = await database.events.prune(cutoff)
            if deleted:
                log.info("eventlog.pruned", deleted=deleted)
        except Exception as exc:
            log.error("eventlog.prune_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PRUNE_EVERY_S):
                await stop.wait()
