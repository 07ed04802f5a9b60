"""Waiting starts (issue 13): coalescing keeps one start per key with the latest event,
claims go oldest first, and a target's limit holds across workers racing for its slots
(two engines on one store: PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from service.runs import RunState
from service.store import Database
from service.store.schema import waiting_starts
from service.store.waiting import Slots

SLOTS = Slots("uipath:rk", ("r",), 2)


def start(n: int, **extra: object) -> dict[str, object]:
    fields: dict[str, object] = dict(
        correlation_id=f"c-{n}", rule="r", target_key=SLOTS.target_key, event_id=f"e-{n}",
        event=f'{{"n": {n}}}', fact_sheet_id=f"fs-{n}",
    )  # fmt: skip
    return {**fields, **extra}


async def retry_time_passes(database: Database, waiting_id: int) -> None:
    """Move a held start's retry time, or a claim's lease, into the past (`claimed_until`;
    a loaded machine never outruns it)."""
    async with database.engine.begin() as connection:
        await connection.execute(
            sa.update(waiting_starts)
            .where(waiting_starts.c.id == waiting_id)
            .values(claimed_until=time.time() - 1)
        )


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
    await store.coalesce(key="r/fs-1", window_s=0.0, **start(1))  # its window closed
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
    await store.done(third.id, "w2")


async def test_a_start_that_failed_for_now_holds_its_target_until_its_retry(
    database: Database,
) -> None:
    """Strictly in order: while the head waits for its retry nothing behind it is claimed,
    even with slots free; then it goes first, and the rest after it."""
    store = database.waiting
    slots = Slots(SLOTS.target_key, ("r",), 3)
    for n in range(4):
        await store.add(due_at=time.time(), **start(n))
    head, *rest = await store.claim(slots, "w1", 60, 60)
    assert [head.correlation_id, *(w.correlation_id for w in rest)] == ["c-0", "c-1", "c-2"]
    await store.later(head.id, "w1", time.time() + 60, "UiPath is unavailable: 503")
    await store.release([w.id for w in rest], "w1")  # claimed with it, not tried
    assert await store.claim(slots, "w2", 60, 60) == []  # held: three slots free, none taken
    assert await store.behind(head) == 3
    found = {w.correlation_id: w for w in await store.search(limit=None)}
    held = found["c-0"]
    assert (held.status(time.time()), held.attempts) == ("retrying", 1)
    assert held.last_error == "UiPath is unavailable: 503"
    assert held.retry_at(time.time()) == held.claimed_until
    assert [found[f"c-{n}"].status(time.time()) for n in (1, 2, 3)] == ["waiting"] * 3
    assert (await store.counts())["r"] == {"retrying": 1, "waiting": 3}

    async def retried() -> list[str]:
        return [w.correlation_id for w in await store.claim(slots, "w2", 60, 60)]

    await retry_time_passes(database, head.id)
    assert await retried() == ["c-0", "c-1", "c-2"]  # first again, the others behind it


async def test_a_start_refused_for_good_unblocks_the_rest(database: Database) -> None:
    store = database.waiting
    slots = Slots(SLOTS.target_key, ("r",), 1)
    for n in range(3):
        await store.add(due_at=time.time(), **start(n))
    (head,) = await store.claim(slots, "w1", 60, 60)
    await store.later(head.id, "w1", time.time() + 60, "busy")
    assert await store.claim(slots, "w1", 60, 60) == []
    await retry_time_passes(database, head.id)
    (again,) = await store.claim(slots, "w1", 60, 60)
    assert again.id == head.id and again.attempts == 1
    await store.done(again.id, "w1")  # refused for good: dropped
    (nxt,) = await store.claim(slots, "w1", 60, 60)
    assert nxt.correlation_id == "c-1"


async def test_a_coalescing_start_keeps_its_place_behind_a_held_one(database: Database) -> None:
    """A coalescing row's place is its first event + window: one due after the head
    started waits for the head's retry; one due before it goes ahead of the head."""
    store = database.waiting
    slots = Slots(SLOTS.target_key, ("r",), None)
    await store.coalesce(key="r/fs-early", window_s=0.0, **start(1))  # due now: ahead
    await store.add(due_at=time.time(), **start(2))
    (early, head) = await store.claim(slots, "w1", 60, 60)
    assert (early.correlation_id, head.correlation_id) == ("c-1", "c-2")
    await store.done(early.id, "w1")
    await store.later(head.id, "w1", time.time() + 60, "busy")
    await store.coalesce(key="r/fs-late", window_s=0.0, **start(3))  # due now: after the head
    await store.add(due_at=head.due_at - 1, **start(4))  # a place before the head's
    assert [w.correlation_id for w in await store.claim(slots, "w1", 60, 60)] == ["c-4"]
    assert await store.claim(slots, "w1", 60, 60) == []  # c-3 is behind the head
    await retry_time_passes(database, head.id)
    assert [w.correlation_id for w in await store.claim(slots, "w1", 60, 60)] == ["c-2", "c-3"]


async def test_a_start_of_a_rule_gone_from_the_target_neither_goes_nor_holds(
    database: Database,
) -> None:
    store = database.waiting
    await store.add(due_at=time.time(), **start(1, rule="gone"))
    (gone,) = await store.claim(Slots(SLOTS.target_key, ("gone",), None), "w1", 60, 60)
    await store.later(gone.id, "w1", time.time() + 60, "busy")
    await store.add(due_at=time.time(), **start(2))
    (claimed,) = await store.claim(SLOTS, "w1", 60, 60)  # rule "r" only
    assert claimed.correlation_id == "c-2"


async def test_a_lapsed_claim_is_taken_again(database: Database) -> None:
    store = database.waiting
    await store.add(due_at=time.time(), **start(1))
    (claimed,) = await store.claim(SLOTS, "dead", 60, 60)
    await retry_time_passes(database, claimed.id)  # the dead holder's lease lapses
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
