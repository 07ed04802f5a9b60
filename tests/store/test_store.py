"""The store on both databases: migrations, run lifecycle, exactly-once completion, guards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from service.errors import ConfigError
from service.runs import RunState
from service.store import Database
from service.store.migrations import MIGRATIONS, migrate
from tests.conftest import postgres_database


async def begin(database: Database, correlation_id: str = "c-1", vendor: str = "uipath"):  # type: ignore[no-untyped-def]
    return await database.runs.begin(
        correlation_id=correlation_id,
        vendor=vendor,
        rule="start-job",
        event_id="e-1",
        fact_sheet_id="fs-1",
        target={"release_key": "rk"},
        inputs={"name": "AC Management"},
    )


async def test_migrations_are_applied_once(database: Database) -> None:
    assert await migrate(database.engine) == []  # open() applied them all already
    assert len(MIGRATIONS) >= 3


async def test_processes_starting_at_once_migrate_one_fresh_postgresql_in_turn(
    prefix: str,
) -> None:
    """Pods of one deployment start together: their migrations must not race."""
    async with postgres_database(prefix) as url:
        engines = [create_async_engine(url) for _ in range(4)]
        try:
            applied = await asyncio.gather(*(migrate(engine) for engine in engines))
        finally:
            await asyncio.gather(*(engine.dispose() for engine in engines))
    assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]


async def test_a_run_is_recorded_before_start_and_found_again(database: Database) -> None:
    run, created = await begin(database)
    assert created
    assert (run.status, run.vendor, run.run_id) == ("starting", "uipath", None)
    assert run.inputs == {"name": "AC Management"}
    again, created_again = await begin(database)
    assert not created_again
    assert again.id == run.id

    await database.runs.started("c-1", RunState("uipath", "148712", "pending", "Pending"), 10.0)
    found = await database.runs.find("uipath", "148712")
    assert found is not None
    assert (found.status, found.run_id, found.next_poll_at) == ("running", "148712", 10.0)
    assert await database.runs.find("uipath", "c-1") == found  # by correlation id too
    assert await database.runs.find("robocorp", "148712") is None


async def test_completion_is_won_once(database: Database) -> None:
    run, _ = await begin(database)
    await database.runs.started("c-1", RunState("uipath", "7", "running"), 0.0)
    done = RunState("uipath", "7", "succeeded", "Successful", outputs={"ticket": "T-1"})
    results = await asyncio.gather(
        *(database.runs.complete(run, done, event_id=f"callback-{n}") for n in range(5))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    winner = winners[0]
    assert winner.status == "completed"
    assert winner.outcome == "succeeded"
    assert winner.outputs == {"ticket": "T-1"}
    # The winner's own retry may finish a write-back that failed half-way; others may not.
    assert await database.runs.complete(run, done, event_id=winner.completed_by or "") is not None
    assert await database.runs.complete(run, done, event_id="poller") is None
    await database.runs.written_back(run.id)
    assert await database.runs.complete(run, done, event_id=winner.completed_by or "") is None


async def test_due_runs_for_polling(database: Database) -> None:
    for n, poll_at in enumerate((5.0, 15.0, 25.0)):
        await begin(database, correlation_id=f"c-{n}")
        await database.runs.started(f"c-{n}", RunState("uipath", str(n), "running"), poll_at)
    due = await database.runs.due(now=20.0)
    assert [r.run_id for r in due] == ["0", "1"]
    await database.runs.polled(due[0].id, 100.0, "Running")
    assert [r.run_id for r in await database.runs.due(now=20.0)] == ["1"]
    polled = await database.runs.by_id(due[0].id)
    assert polled is not None and polled.poll_count == 1


async def test_a_run_completed_before_its_start_was_recorded_stays_completed(
    database: Database,
) -> None:
    run, _ = await begin(database)
    done = RunState("workato", "j-1", "succeeded", "succeeded")
    assert await database.runs.complete(run, done, event_id="callback") is not None

    await database.runs.started("c-1", RunState("workato", "j-1", "pending", url="u"), 1.0)

    after = await database.runs.by_id(run.id)
    assert after is not None
    assert (after.status, after.run_id, after.run_url) == ("completed", "j-1", "u")
    assert await database.runs.due(now=10.0) == []  # never polled again


async def test_a_long_vendor_state_is_cut_to_fit(database: Database) -> None:
    run, _ = await begin(database)
    state = RunState("leapwork", "r-1", "failed", "Failed: " + "x" * 200)
    assert await database.runs.complete(run, state, event_id="callback") is not None
    after = await database.runs.by_id(run.id)
    assert after is not None and after.vendor_state == state.vendor_state[:50]


async def test_a_due_run_is_claimed_by_one_poller(database: Database) -> None:
    await begin(database)
    await database.runs.started("c-1", RunState("uipath", "7", "running"), 5.0)
    [due] = await database.runs.due(now=10.0)

    claims = await asyncio.gather(*(database.runs.claim_poll(due, 70.0) for _ in range(4)))

    assert sorted(claims) == [False, False, False, True]
    assert await database.runs.due(now=10.0) == []


async def test_search_by_fact_sheet_vendor_and_status(database: Database) -> None:
    await begin(database, "c-a", "uipath")
    await begin(database, "c-b", "robocorp")
    assert [r.correlation_id for r in await database.runs.search(fact_sheet_id="fs-1")] == [
        "c-b",
        "c-a",
    ]
    assert [r.correlation_id for r in await database.runs.search(vendor="robocorp")] == ["c-b"]
    assert await database.runs.search(status="running") == []


async def test_handled_events_are_claimed_then_marked(database: Database) -> None:
    handled = database.handled
    assert await handled.claim("e-1", "h", lease_s=60) == "claimed"
    assert await handled.claim("e-1", "h", lease_s=60) == "busy"  # under way elsewhere
    assert not await handled.is_handled("e-1", "h")
    await handled.mark("e-1", "h")
    assert await handled.is_handled("e-1", "h")
    assert await handled.claim("e-1", "h", lease_s=60) == "done"
    assert await handled.claim("e-1", "other", lease_s=60) == "claimed"


async def test_a_stale_claim_is_taken_over_and_a_released_one_is_free(database: Database) -> None:
    handled = database.handled
    assert await handled.claim("e-2", "h", lease_s=0) == "claimed"  # a lease that lapses at once
    assert await handled.claim("e-2", "h", lease_s=60) == "claimed"  # its worker died
    await handled.release("e-2", "h")
    assert await handled.claim("e-2", "h", lease_s=60) == "claimed"
    await handled.mark("e-2", "h")
    await handled.release("e-2", "h")  # never drops finished work
    assert await handled.is_handled("e-2", "h")


async def test_fact_sheet_sequence_drops_older_events(database: Database) -> None:
    sequences = database.sequences
    assert await sequences.advance("fs-1", 100, "e-100")
    assert await sequences.advance("fs-1", 100, "e-100")  # the same event again (a retry)
    assert not await sequences.advance("fs-1", 99, "e-99")  # older: dropped
    assert not await sequences.advance("fs-1", 100, "e-other")
    assert await sequences.advance("fs-1", 101, "e-101")
    assert await sequences.advance("fs-2", 1, "e-1")  # per Fact Sheet


def test_a_wrong_url_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="store.url"):
        Database("mysql://somewhere/db")
    with pytest.raises(ConfigError, match="store.url"):
        Database("::not a url::")


def test_repr_hides_the_password() -> None:
    db = Database("postgresql+asyncpg://user:s3cret-pw@host/db")
    assert "s3cret-pw" not in repr(db)
