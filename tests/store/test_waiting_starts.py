"""Waiting starts (issue 13): coalescing keeps one start per key with the latest event,
claims go oldest first, and a target's limit holds across workers racing for its slots
(two engines on one store: PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import time

from service.runs import RunState
from service.store import Database
from service.store.waiting import Slots

SLOTS = Slots("uipath:rk", ("r",), 2)


def start(n: int, **extra: object) -> dict[str, object]:
    fields: dict[str, object] = dict(
        correlation_id=f"c-{n}", rule="r", target_key=SLOTS.target_key, event_id=f"e-{n}",
        event=f'{{"n": {n}}}', fact_sheet_id=f"fs-{n}",
    )  # fmt: skip
    return {**fields, **extra}


async def run_started(database: Database, correlation_id: str) -> None:
    """What the starter records for a start it made: a run `running`."""
    await database.runs.begin(
        correlation_id=correlation_id, vendor="uipath", rule="r", event_id=correlation_id,
        fact_sheet_id=None, target={}, inputs={},
    )  # fmt: skip
    state = RunState("uipath", f"job-{correlation_id}", "running", "Running")
    await database.runs.started(correlation_id, state, time.time() + 60)


async def test_coalescing_keeps_one_start_with_the_latest_event(database: Database) -> None:
    store = database.waiting
    for n in range(10):
        await store.coalesce(key="r/fs-1", window_s=30.0, **start(n, fact_sheet_id="fs-1"))
    await store.coalesce(key="r/fs-2", window_s=30.0, **start(99, fact_sheet_id="fs-2"))
    one, two = await store.search(limit=None)
    assert (one.event, one.event_id, one.correlation_id) == ('{"n": 9}', "e-9", "c-9")
    assert one.events == 10
    assert one.due_at == one.first_seen + 30.0  # the window runs from the first event
    assert two.events == 1
    assert one.status(time.time()) == "coalescing"
    assert await store.claim(SLOTS, "w1", 60, 60) == []  # not due yet
    assert await store.counts() == {"r": {"coalescing": 2}}


async def test_a_claimed_start_leaves_the_window_to_later_events(database: Database) -> None:
    store = database.waiting
    await store.coalesce(key="r/fs-1", window_s=0.001, **start(1))
    await asyncio.sleep(0.01)  # the window closes
    (claimed,) = await store.claim(Slots(SLOTS.target_key, ("r",), None), "w1", 60, 60)
    await store.coalesce(key="r/fs-1", window_s=30.0, **start(2))  # a new window
    rows = await store.search(limit=None)
    assert [(row.event_id, row.coalesce_key) for row in rows] == [("e-1", None), ("e-2", "r/fs-1")]
    assert claimed.event_id == "e-1"


async def test_claims_go_in_order_and_only_into_free_slots(database: Database) -> None:
    store = database.waiting
    for n in range(5):
        assert await store.add(due_at=time.time(), **start(n))
    assert not await store.add(due_at=time.time(), **start(0))  # the same start again
    first = await store.claim(SLOTS, "w1", 60, 60)
    assert [w.correlation_id for w in first] == ["c-0", "c-1"]
    assert await store.claim(SLOTS, "w2", 60, 60) == []  # both slots claimed
    for waiting in first:
        await run_started(database, waiting.correlation_id)
        await store.done(waiting.id, "w1")
    assert await store.claim(SLOTS, "w2", 60, 60) == []  # both slots running
    run = await database.runs.by_correlation("c-0")
    assert run is not None
    await database.runs.complete(run, RunState("uipath", "job", "succeeded", "Successful"), "x")
    (third,) = await store.claim(SLOTS, "w2", 60, 60)
    assert third.correlation_id == "c-2"
    await store.later(third.id, "w2", time.time() + 0.05)  # failed: not before its retry
    (fourth,) = await store.claim(SLOTS, "w2", 60, 60)  # the next one may go meanwhile
    assert fourth.correlation_id == "c-3"
    await store.later(fourth.id, "w2", time.time())
    await asyncio.sleep(0.06)
    again = await store.claim(SLOTS, "w2", 60, 60)
    assert [w.correlation_id for w in again] == ["c-2"]  # first in line again: its place


async def test_a_lapsed_claim_is_taken_again(database: Database) -> None:
    store = database.waiting
    await store.add(due_at=time.time(), **start(1))
    (claimed,) = await store.claim(SLOTS, "dead", 0.001, 60)
    await asyncio.sleep(0.01)
    (again,) = await store.claim(SLOTS, "alive", 60, 60)
    assert again.id == claimed.id and again.claimed_by == "alive"
    await store.done(again.id, "dead")  # the dead holder's late word changes nothing
    assert len(await store.search()) == 1


async def test_racing_workers_never_exceed_the_limit(database: Database) -> None:
    """Two workers (engines), eight claimers each, 40 starts, a limit of 3: every round
    of claims fills exactly the free slots, never more."""
    other = Database(database.engine.url.render_as_string(hide_password=False))
    try:
        slots = Slots(SLOTS.target_key, ("r",), 3)
        for n in range(40):
            await database.waiting.add(due_at=time.time(), **start(n))
        started: list[str] = []
        for _ in range(14):
            stores = [database.waiting, other.waiting] * 8
            rounds = await asyncio.gather(
                *(s.claim(slots, f"w{i}", 60, 60) for i, s in enumerate(stores))
            )
            claimed = [(i, w) for i, found in enumerate(rounds) for w in found]
            assert len(claimed) <= 3
            for holder, waiting in claimed:
                await run_started(database, waiting.correlation_id)
                await stores[holder].done(waiting.id, f"w{holder}")
                started.append(waiting.correlation_id)
            for run in await database.runs.search(status="running"):
                await database.runs.complete(run, RunState("uipath", "j", "succeeded", ""), "x")
        assert started == [f"c-{n}" for n in range(40)]  # each once, in order
    finally:
        await other.close()
