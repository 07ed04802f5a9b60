"""A worker's claims on both databases: renewed while held, waited for, taken over, fenced."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest
import sqlalchemy as sa

from service.store import Database
from service.store.handled import HandledStore
from service.store.schema import handled
from service.worker.claims import ClaimBusy, ClaimLost, Claims
from tests.waiting import eventually

LEASE_S = 0.5


class Unrenewable(HandledStore):
    """The store as a worker sees it once it cannot reach it for renewals."""

    async def renew(self, tokens: Collection[str], lease_s: float) -> set[str]:
        raise ConnectionRefusedError("the store is unreachable")


class Flaky(HandledStore):
    """A store that is unreachable for the first `failures` marks."""

    failures = 2

    async def mark(self, event_id: str, handler: str, token: str | None = None) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("the store is unreachable")
        return await super().mark(event_id, handler, token)


async def _lease_until(database: Database, event_id: str) -> float:
    query = sa.select(handled.c.lease_until).where(handled.c.event_id == event_id)
    async with database.engine.connect() as connection:
        return float((await connection.execute(query)).scalar() or 0.0)


async def test_a_claim_is_renewed_while_its_handler_runs(database: Database) -> None:
    claims = Claims(database.handled, LEASE_S, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    first = await _lease_until(database, "e-1")
    async with claims.running(held, 30):
        await eventually(
            lambda: _renewed_by(database, first + 3 * LEASE_S), 10, "the lease renewed thrice"
        )
        assert await database.handled.claim("e-1", "h", LEASE_S, token="other") == "busy"
    assert await claims.mark(held)
    assert await database.handled.is_handled("e-1", "h")


async def _renewed_by(database: Database, until: float) -> bool:
    return await _lease_until(database, "e-1") > until


async def test_a_delivery_waits_out_a_dead_workers_claim_and_takes_it_over(
    database: Database,
) -> None:
    dead = Claims(database.handled, LEASE_S, 300)
    stale = await dead.acquire("e-1", "h")
    assert stale is not None and dead._heartbeat is not None
    dead._heartbeat.cancel()  # the worker died: nobody renews its claim
    alive = Claims(database.handled, LEASE_S, 300)
    held = await alive.acquire("e-1", "h")  # waits for the lapse instead of failing
    assert held is not None
    assert await alive.mark(held)
    assert not await dead.mark(stale)  # a claim taken over is never marked by its old holder
    assert await alive.acquire("e-1", "h") is None  # done


async def test_a_claim_kept_alive_by_its_worker_makes_another_delivery_busy(
    database: Database,
) -> None:
    holder = Claims(database.handled, LEASE_S, 300)
    held = await holder.acquire("e-1", "h")
    assert held is not None
    with pytest.raises(ClaimBusy):
        await Claims(database.handled, LEASE_S, 300).acquire("e-1", "h")
    await holder.release(held)
    assert await Claims(database.handled, LEASE_S, 300).acquire("e-1", "h") is not None


async def test_a_claim_that_cannot_be_renewed_cuts_its_handler_short(database: Database) -> None:
    claims = Claims(Unrenewable(database.engine), LEASE_S, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    with pytest.raises(ClaimLost):
        async with asyncio.timeout(10), claims.running(held, 30):
            await asyncio.Event().wait()  # a handler that would run on and on
    await claims.release(held)
    assert await database.handled.claim("e-1", "h", LEASE_S, token="next") == "claimed"


async def test_a_claim_taken_over_cuts_its_handler_short(database: Database) -> None:
    claims = Claims(database.handled, LEASE_S, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    with pytest.raises(ClaimLost):
        async with asyncio.timeout(10), claims.running(held, 30):
            async with database.engine.begin() as connection:  # another worker took it over
                await connection.execute(handled.update().values(token="theirs"))
            await asyncio.Event().wait()
    assert not await claims.mark(held)


async def test_the_handlers_own_timeout_is_no_lost_claim(database: Database) -> None:
    claims = Claims(database.handled, 30, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    with pytest.raises(TimeoutError):
        async with claims.running(held, 0.05):
            await asyncio.Event().wait()
    with pytest.raises(TimeoutError):
        async with claims.running(held, 30):
            raise TimeoutError("the vendor did not answer")
    await claims.release(held)


async def test_a_transaction_commits_with_the_done_mark_or_not_at_all(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE effects (event_id VARCHAR(20))"))
    insert = sa.text("INSERT INTO effects (event_id) VALUES (:e)")
    claims = Claims(database.handled, 30, 300)
    for event_id, taken_over in (("e-1", False), ("e-2", True)):
        held = await claims.acquire(event_id, "h")
        assert held is not None
        if taken_over:
            async with database.engine.begin() as connection:
                await connection.execute(handled.update().values(token="theirs"))
        try:
            async with claims.transaction(held) as connection:
                await connection.execute(insert, {"e": event_id})
        except ClaimLost:
            assert taken_over
        await claims.release(held)
    async with database.engine.connect() as connection:
        done = [r[0] for r in await connection.execute(sa.text("SELECT event_id FROM effects"))]
    assert done == ["e-1"]
    assert await database.handled.is_handled("e-1", "h")
    assert not await database.handled.is_handled("e-2", "h")


async def test_a_done_mark_waits_for_an_unreachable_store(database: Database) -> None:
    store = Flaky(database.engine)
    claims = Claims(store, 30, 300)
    held = await claims.acquire("e-1", "h")
    assert held is not None
    assert await claims.mark(held)
    assert store.failures == 0
    assert await database.handled.is_handled("e-1", "h")
