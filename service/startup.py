"""Start-up: what a process still awaits, and waiting for the store.

A resource down at start-up is waited for, never silently: one `startup.waiting` line per
attempt names it and the error (no password), and /readyz answers 503 naming it (not the
error: the probe is unauthenticated, and the error may name a host). An error
that waiting cannot cure (a refused login, a missing database, a wrong setting) stops the
process with the reason instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from service.store import Database, outages

log = structlog.get_logger("service.startup")

STORE = "store"


@dataclass
class Startup:
    """What this process awaits: {what: why}; those in `blocking` keep it unready."""

    awaited: dict[str, str] = field(default_factory=dict)
    blocking: set[str] = field(default_factory=set)

    def awaiting(self, what: str, why: str, *, blocks_ready: bool = True) -> None:
        self.awaited[what] = why
        if blocks_ready:
            self.blocking.add(what)

    def arrived(self, what: str) -> None:
        self.awaited.pop(what, None)
        self.blocking.discard(what)

    def unready(self) -> list[str]:
        """Why the process is not ready yet, one line per resource awaited."""
        return [self.awaited[what] for what in sorted(self.blocking)]


STARTUP = web.AppKey("startup", Startup)


async def open_store(
    database: Database,
    startup: Startup,
    stop: asyncio.Event,
    retry_s: float,
    *,
    blocks_ready: bool = True,
) -> bool:
    """Open (migrate) the store, waiting while it is unreachable; False if stopped first.

    Errors that are not an outage propagate: waiting would not cure them.
    """
    url = database.engine.url
    label = outages.name(url)
    startup.awaiting(STORE, f"waiting for {label}", blocks_ready=blocks_ready)
    while not stop.is_set():
        try:
            await database.open()
        except Exception as exc:
            if not outages.is_outage(exc):
                raise
            reason = outages.describe(exc, url)
            log.warning(
                "startup.waiting", awaiting=label, url=database.safe_url, error=reason,
                retry_in_s=retry_s,
            )  # fmt: skip
            await _pause(stop, retry_s)
        else:
            startup.arrived(STORE)
            return True
    return False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
