"""Outages: telling "the store is away" from "the store refuses this", and waiting one out.

A write that must not be lost (the event log's row before an ack, a handler's done mark)
is tried again while the store is unreachable; an error about the data itself is never
retried, as it would never succeed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
import structlog

log = structlog.get_logger("service.store")

FIRST_WAIT_S = 0.1  # between tries while the store is unreachable, doubling...
LONGEST_WAIT_S = 5.0  # ...up to this

T = TypeVar("T")


def unreachable(exc: BaseException) -> bool:
    """Whether a store error means "not now" (no connection, a lock, a timeout) rather
    than "never" (the store refuses the statement or its data)."""
    if isinstance(exc, OSError | TimeoutError | sa.exc.OperationalError | sa.exc.InterfaceError):
        return True
    if isinstance(exc, sa.exc.TimeoutError):  # the connection pool's
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


async def until_reachable(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`call()`, tried again with backoff for as long as the store is unreachable; any
    other error is raised at once."""
    wait_s, since = FIRST_WAIT_S, time.monotonic()
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not unreachable(exc):
                raise
            if wait_s == FIRST_WAIT_S:
                log.error("store.unreachable", waiting=what, error=repr(exc)[:500])
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, LONGEST_WAIT_S)
            continue
        if wait_s != FIRST_WAIT_S:
            log.info("store.reachable", waited=what, waited_s=round(time.monotonic() - since, 1))
        return result
