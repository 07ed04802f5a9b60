"""Store outages: which errors mean "the store cannot be reached now", how to say so, and
waiting one out.

An outage is waited for at start-up, answered 503 + Retry-After by the admin API, and
waited out by a write that must not be lost (the event log's row before an ack, a
handler's done mark): the server refused or dropped the connection, did not answer in
time, is starting or shutting down, or has no connection slot free. Anything else (a
refused login, a missing database, an error in our SQL, data the store refuses) is not
cured by waiting and is never retried. A description never carries the password.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger("service.store")

FIRST_WAIT_S = 0.1  # between tries while the store is unreachable, doubling...
LONGEST_WAIT_S = 5.0  # ...up to this

T = TypeVar("T")


def unreachable(exc: BaseException) -> bool:
    """Whether a store error means "not now" for a write that must not be lost: an outage,
    or any operational or interface error (a lock, a connection the driver dropped)
    rather than "never" (the store refuses the statement or its data)."""
    return is_outage(exc) or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)


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


# SQLSTATEs that waiting cures: class 08 (connection exception), class 53 (insufficient
# resources: too many connections), 57P01-57P03 (shutting down, crashed, starting up).
_PASSING_STATES = ("08", "53", "57P01", "57P02", "57P03")
_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the store is unreachable for now (retry later)."""
    if isinstance(exc, OSError | sa.exc.TimeoutError):  # refused, unreachable, timed out
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith(_PASSING_STATES)
    return "database is locked" in str(exc.orig)  # SQLite: another writer held on too long


def name(url: str | sa.URL) -> str:
    """`the store (PostgreSQL)`: what an operator knows it as."""
    backend = make_url(url).get_backend_name()
    return f"the store ({_NAMES.get(backend, backend)})"


def describe(exc: BaseException, url: str | sa.URL) -> str:
    """What went wrong, on one line, without the password of `url`."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = (lines[0] if lines else "") or type(cause).__name__
    password = make_url(url).password
    if password:
        text = text.replace(str(password), "***")
    return text[:300]
