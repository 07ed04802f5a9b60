"""Connections: the engine's pool, and how a store statement gets a live connection cheaply.

A worker checks a connection out three times per event, so a round trip per checkout to
test it (SQLAlchemy's `pool_pre_ping`: BEGIN, a ping, ROLLBACK with asyncpg) costs as much
as the work. Instead:

    a connection idle for over IDLE_PING_S    -> pinged at checkout; dead: a fresh one
    the most recently used connection first   -> the hot ones never idle that long
    a statement fails: the server had closed  -> SQLAlchemy marks every connection made
    its connection (a restart, a proxy, a        before it stale; `reconnecting` runs the
    terminated backend)                          store call once more, on a fresh one

Only calls that may run twice go through `reconnecting` (a claim by its token, a mark,
a renewal, a release, an event-log write). A handler's own transaction never does: its
failure is the handler's and is retried as one. A single statement runs in autocommit on
PostgreSQL (`autocommit`): no BEGIN and COMMIT round trips around it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = structlog.get_logger("service.store")

IDLE_PING_S = 1.0  # a connection checked in longer ago than this is pinged at checkout
# At most 15 connections per process, as SQLAlchemy's default (5 kept + 10 overflow), but
# all kept: a worker runs up to `worker.prefetch` events at once, and overflow connections
# closed at checkin and opened again (a connect, a login, asyncpg's type look-ups) cost
# 0.4 new sessions per event at 32 in flight. Most recently used first.
POOL: dict[str, Any] = {"pool_size": 15, "max_overflow": 0, "pool_use_lifo": True}
_IDLE_SINCE = "idle_since"

T = TypeVar("T")


def engine(url: str) -> AsyncEngine:
    """An engine whose pool pings only connections that sat idle, most recent first."""
    options = POOL if url.startswith("postgresql") else {}  # SQLite: its own pool
    created = create_async_engine(url, pool_pre_ping=False, **options)
    pool = created.sync_engine.pool
    dialect = created.sync_engine.dialect
    sa.event.listen(pool, "checkin", _checked_in)
    sa.event.listen(pool, "checkout", lambda dbapi, record, _proxy: _alive(dialect, dbapi, record))
    return created


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def _alive(dialect: sa.Dialect, dbapi_connection: Any, record: Any) -> None:
    """Ping a connection that idled past IDLE_PING_S; a dead one is replaced by the pool."""
    idle_since = record.info.pop(_IDLE_SINCE, None)
    if idle_since is None or time.monotonic() - idle_since <= IDLE_PING_S:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise sa.exc.DisconnectionError(f"a pooled connection was dead: {exc!r}"[:300]) from exc


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """`engine` for single statements: autocommit on PostgreSQL (each is its own
    transaction, without BEGIN and COMMIT round trips), `engine` itself elsewhere."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def reconnecting(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`call()`, and once more if it failed because the server had closed its connection
    (the pool then connects afresh). Only for calls that may run twice."""
    try:
        return await call()
    except sa.exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("store.reconnecting", call=what, error=repr(exc.orig)[:300])
    return await call()
