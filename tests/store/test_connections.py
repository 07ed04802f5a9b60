"""Connections without a ping per checkout (service/store/connections.py): a connection the
server closed is replaced, by the pool's ping of an idle one or by one more try of a store
call that may run twice; and the worker's store writes that such a try may repeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from service.errors import RetryLater
from service.store import Database, connections
from service.store.connections import reconnecting
from service.store.eventlog import Attempt, LoggedEvent
from service.store.handled import HandledStore
from service.worker.claims import Claims, StoreUnreachable
from tests.conftest import postgres_database
from tests.waiting import eventually


async def test_a_claim_tried_again_with_its_own_token_is_still_claimed(database: Database) -> None:
    """A claim whose reply was lost with its connection committed: its retry is not busy."""
    store = database.handled
    assert await store.claim("e-1", "h", 60, token="a") == "claimed"
    assert await store.claim("e-1", "h", 60, token="a") == "claimed"
    assert await store.claim("e-1", "h", 60, token="b") == "busy"
    assert await store.mark("e-1", "h", token="a")
    assert await store.claim("e-1", "h", 60, token="a") == "done"  # done is done, for anyone


class Unmarkable(HandledStore):
    """A store whose separate done mark must not be needed."""

    async def mark(self, event_id: str, handler: str, token: str | None = None) -> bool:
        raise AssertionError("the handler's transaction marked it already")


async def test_a_claim_marked_in_the_handlers_transaction_is_not_marked_again(
    database: Database,
) -> None:
    claims = Claims(Unmarkable(database.engine), 30, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    async with claims.transaction(held):
        pass
    assert await claims.mark(held)
    assert await database.handled.is_handled("e-1", "h")
    assert await claims.acquire("e-1", "h") is None  # a redelivery skips it


async def test_workers_racing_to_log_one_event_keep_one_row_and_every_attempt(
    database: Database,
) -> None:
    head = LoggedEvent(
        id="e-1", type="t", source="s", subject=None, time=None, received_at=1.0,
        updated_at=1.0, status="handled", attempts=1, last_error=None,
    )  # fmt: skip
    tries = [[Attempt(f"h{n}", 1, "ok", None, 1.0, 1.0)] * (n + 1) for n in range(4)]
    await asyncio.gather(*(database.events.record(head, t, None) for t in tries))
    found = await database.events.get("e-1")
    assert found is not None
    assert found[0].status == "handled"
    assert sorted(t.handler for t in found[1]) == ["h0", "h1", "h1", "h2", "h2", "h2", *["h3"] * 4]


def _invalidated() -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True)


async def test_reconnecting_tries_once_more_and_only_after_a_closed_connection() -> None:
    calls = 0

    async def closed_then(result: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise _invalidated()
        return result

    assert await reconnecting(lambda: closed_then("ok"), "test") == "ok"

    async def always(exc: Exception) -> None:
        raise exc

    with pytest.raises(sa.exc.DBAPIError):
        await reconnecting(lambda: always(_invalidated()), "test")  # twice: the store is away
    refused = sa.exc.DBAPIError("SELECT 1", None, ValueError("bad data"))
    with pytest.raises(sa.exc.DBAPIError):
        await reconnecting(lambda: always(refused), "test")


@pytest.fixture
async def postgres(prefix: str) -> AsyncIterator[Database]:
    async with postgres_database(prefix) as url:
        database = Database(url)
        await database.open()
        yield database
        await database.close()


async def _close_its_connections(database: Database) -> None:
    """The server ends every session of the test's database but the one asking."""
    name = make_url(database.engine.url).database
    dsn = make_url(database.engine.url).set(drivername="postgresql", database="postgres")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        others = "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
        await admin.execute(f"SELECT pg_terminate_backend(pid) {others}", name)
        await eventually(lambda: _none_left(admin, others, name), what="sessions ended")
    finally:
        await admin.close()


async def _none_left(admin: asyncpg.Connection, others: str, name: str | None) -> bool:
    return await admin.fetchval(f"SELECT count(*) {others}", name) == 0


async def test_store_calls_on_connections_the_server_closed_run_again_on_fresh_ones(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "IDLE_PING_S", 3600.0)  # no ping: the statement finds out
    store, events = postgres.handled, postgres.events
    head = LoggedEvent(
        id="e-1", type="t", source="s", subject=None, time=None, received_at=1.0,
        updated_at=1.0, status="handled", attempts=1, last_error=None,
    )  # fmt: skip
    calls = [
        lambda: store.claim("e-1", "h", 60, token="a"),
        lambda: store.renew(["a"], 60),
        lambda: store.mark("e-1", "h", token="a"),
        lambda: store.release("e-2", "h", token="a"),
        lambda: events.record(head, [Attempt("h", 1, "ok", None, 1.0, 1.0)], None),
    ]
    assert await store.claim("e-0", "h", 60, token="z") == "claimed"  # a pooled connection
    for call in calls:
        await _close_its_connections(postgres)
        with capture_logs() as logs:
            await call()
        assert [e["event"] for e in logs] == ["store.reconnecting"]
    assert await store.is_handled("e-1", "h")
    found = await events.get("e-1")
    assert found is not None and len(found[1]) == 1


async def test_an_idle_connection_the_server_closed_is_replaced_at_checkout(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler's transaction is never run twice: the ping of an idle connection saves it."""
    monkeypatch.setattr(connections, "IDLE_PING_S", -1.0)  # every pooled connection is idle
    async with postgres.engine.begin() as connection:
        await connection.execute(sa.text("SELECT 1"))
    await _close_its_connections(postgres)
    async with postgres.engine.begin() as connection:
        assert (await connection.execute(sa.text("SELECT 1"))).scalar() == 1


async def test_a_transaction_on_a_connection_closed_unnoticed_fails_once(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed within IDLE_PING_S of its last use: that one transaction fails (a handler's
    failure, retried as one); the pool replaces every connection made before it."""
    monkeypatch.setattr(connections, "IDLE_PING_S", 3600.0)
    async with postgres.engine.begin() as connection:
        await connection.execute(sa.text("SELECT 1"))
    await _close_its_connections(postgres)
    with pytest.raises(sa.exc.DBAPIError) as failed:
        async with postgres.engine.begin() as connection:
            await connection.execute(sa.text("SELECT 1"))
    assert failed.value.connection_invalidated
    async with postgres.engine.begin() as connection:
        assert (await connection.execute(sa.text("SELECT 1"))).scalar() == 1


async def test_a_handlers_transaction_that_lost_the_store_is_retried_not_dead_lettered(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "IDLE_PING_S", 3600.0)
    claims = Claims(postgres.handled, 30, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    await _close_its_connections(postgres)
    with pytest.raises(StoreUnreachable) as lost:
        async with claims.transaction(held) as connection:
            await connection.execute(sa.text("SELECT 1"))
    assert isinstance(lost.value, RetryLater)
    assert "bridge_test" not in str(lost.value)  # no password, no URL
    await claims.release(held)
    assert not await postgres.handled.is_handled("e-1", "h")
    with pytest.raises(sa.exc.IntegrityError):  # the handler's data refused: not "later"
        async with claims.transaction(held) as connection:
            await connection.execute(sa.text("CREATE TABLE t (x int PRIMARY KEY)"))
            await connection.execute(sa.text("INSERT INTO t VALUES (1), (1)"))


async def test_connections_opened_for_a_burst_are_kept_for_the_next(postgres: Database) -> None:
    """A worker has up to `worker.prefetch` events in flight: connections closed after a
    burst would be opened again (a login, asyncpg's type look-ups) for the next one."""
    all_in = asyncio.Barrier(12)

    async def hold() -> None:
        async with postgres.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
            await all_in.wait()

    await asyncio.gather(*(hold() for _ in range(12)))
    pool = postgres.engine.sync_engine.pool
    assert pool.checkedin() == 12  # type: ignore[attr-defined]
