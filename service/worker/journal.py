"""Journal: writes each handled message into the event log (status + one row per attempt).

Written after the message is settled, so it never delays a handler; a failure to write
is logged and never changes how the message was settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import orjson
import structlog

from service.cloudevent import CloudEvent
from service.settings import EventLogSettings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.worker.policy import Failure

log = structlog.get_logger("service.worker")


@dataclass(frozen=True)
class Ran:
    """One handler's run on one delivery."""

    handler: str
    failure: Failure | None
    duration_ms: float
    skipped: bool = False  # idempotent, and already done


def status_of(ran: list[Ran], fates: dict[str, str]) -> str:
    """The event's status after this delivery."""
    if not ran:
        return "unhandled"
    if "retry" in fates.values():
        return "retrying"
    return "dead_lettered" if fates else "handled"


class Journal:
    def __init__(self, database: Database | None, settings: EventLogSettings) -> None:
        self.database = database
        self.settings = settings

    async def write(
        self, event: CloudEvent, body_size: int, attempt: int, ran: list[Ran], fates: dict[str, str]
    ) -> None:
        """Record this delivery; never raises."""
        if self.database is None or not self.settings.enabled:
            return
        try:
            await self.database.events.record(*self._rows(event, body_size, attempt, ran, fates))
        except Exception as exc:
            log.error("eventlog.write_failed", error=repr(exc))

    def _rows(
        self, event: CloudEvent, body_size: int, attempt: int, ran: list[Ran], fates: dict[str, str]
    ) -> tuple[LoggedEvent, list[Attempt], bytes | None]:
        now = time.time()
        errors = [r.failure.error for r in ran if r.failure is not None]
        head = LoggedEvent(
            id=event.id, type=event.type, source=event.source, subject=event.subject,
            time=event.time or None, received_at=now, updated_at=now,
            status=status_of(ran, fates), attempts=attempt,
            last_error=errors[0][:2000] if errors else None,
        )  # fmt: skip
        tries = [
            Attempt(r.handler, attempt, _outcome(r, fates), r.failure.error if r.failure else None,
                    now, round(r.duration_ms, 2))
            for r in ran
        ]  # fmt: skip
        small = body_size <= self.settings.max_data_bytes
        return head, tries, orjson.dumps(event.data) if small else None


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
