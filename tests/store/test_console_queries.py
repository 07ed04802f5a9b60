"""The console's store queries on both databases: find by id, Fact Sheet and vendor run id;
events per minute, latency percentiles, runs per vendor by outcome; a replay's note."""

from __future__ import annotations

import dataclasses

import orjson
import sqlalchemy as sa

from service.runs import RunState
from service.store import Database
from service.store.eventlog import Attempt, EventQuery, LoggedEvent, MinuteCount
from service.store.migrations import MIGRATIONS, migrate
from service.store.schema import schema_migrations

MINUTE = 60_000.0  # a whole minute, in unix seconds


def event(n: int, status: str = "handled", took_s: float = 1.0) -> LoggedEvent:
    at = MINUTE + 20 * n
    return LoggedEvent(
        id=f"e-{n}", type="leanix.factsheet.updated", source="leanix:ws", subject=f"fs-{n}",
        time=None, received_at=at, updated_at=at + took_s, status=status, attempts=1,
        last_error=None,
    )  # fmt: skip


async def seed(database: Database, count: int) -> None:
    for n in range(count):
        data = {"factSheet": {"id": f"fs-{n}", "name": f"App {n}%", "type": "Application"}}
        status = "dead_lettered" if n == 1 else "handled"
        await database.events.record(event(n, status, took_s=n + 1), [], orjson.dumps(data))


async def ids(database: Database, query: EventQuery) -> list[str]:
    found, _ = await database.events.search(query)
    return [e.id for e in found]


async def test_find_by_event_id_fact_sheet_and_vendor_run_id(database: Database) -> None:
    await seed(database, 3)
    assert await ids(database, EventQuery(id="e-2")) == ["e-2"]
    assert await ids(database, EventQuery(fact_sheet="fs-1")) == ["e-1"]
    assert await ids(database, EventQuery(fact_sheet="App 2")) == ["e-2"]
    assert await ids(database, EventQuery(fact_sheet="App")) == ["e-2", "e-1", "e-0"]
    assert await ids(database, EventQuery(fact_sheet="App 1%")) == ["e-1"]  # % is itself
    assert await ids(database, EventQuery(fact_sheet="App _")) == []
    await database.runs.begin(correlation_id="c-1", vendor="uipath", rule="r", event_id="e-1",
                              fact_sheet_id="fs-1", target={}, inputs={})  # fmt: skip
    await database.runs.started("c-1", RunState("uipath", "job-77", "running"), 0.0)
    assert await ids(database, EventQuery(run_id="job-77")) == ["e-1"]
    assert await ids(database, EventQuery(run_id="job-78")) == []
    assert [r.run_id for r in await database.runs.for_event("e-1")] == ["job-77"]
    assert await database.runs.for_event("e-2") == []


async def test_events_per_minute_and_latency(database: Database) -> None:
    await seed(database, 4)  # at +0 s, +20 s, +40 s (minute 0) and +60 s (minute 1)
    found = await database.events.per_minute(since=0.0)
    assert found == [
        MinuteCount(MINUTE, "dead_lettered", 1),
        MinuteCount(MINUTE, "handled", 2),
        MinuteCount(MINUTE + 60, "handled", 1),
    ]
    later = await database.events.per_minute(since=MINUTE + 30)
    assert later == [MinuteCount(MINUTE, "handled", 1), MinuteCount(MINUTE + 60, "handled", 1)]
    latency = await database.events.latency(since=0.0)
    assert (latency.count, latency.p50_s, latency.p99_s) == (3, 3.0, 4.0)  # took 1, 3, 4 s
    empty = await database.events.latency(since=MINUTE * 2)
    assert (empty.count, empty.p50_s, empty.p99_s) == (0, None, None)


async def test_runs_per_vendor_by_outcome(database: Database) -> None:
    for n, vendor in enumerate(("uipath", "uipath", "uipath", "robocorp")):
        await database.runs.begin(correlation_id=f"c-{n}", vendor=vendor, rule="r",
                                  event_id=f"e-{n}", fact_sheet_id=None, target={},
                                  inputs={})  # fmt: skip
    run = await database.runs.by_correlation("c-0")
    assert run is not None
    await database.runs.complete(run, RunState("uipath", "j-0", "failed", "Faulted"), "e-0")
    found = await database.runs.outcomes(since=0.0)
    assert found == {"uipath": {"failed": 1, "starting": 2}, "robocorp": {"starting": 1}}
    assert await database.runs.outcomes(since=run.started_at + 3600) == {}


async def test_a_replay_is_noted_and_the_next_delivery_lands(database: Database) -> None:
    await seed(database, 2)
    await database.events.replayed("e-1", "alice", 90_000.0)
    found = await database.events.get("e-1")
    assert found is not None
    head, tries = found
    assert (head.status, head.attempts) == ("replayed", 0)
    assert [(t.handler, t.outcome, t.at) for t in tries] == [("replayed by alice", "replayed",
                                                             90_000.0)]  # fmt: skip
    again = LoggedEvent(**{**vars(head), "status": "handled", "attempts": 1,
                           "updated_at": 90_001.0})  # fmt: skip
    await database.events.record(again, [Attempt("h", 1, "ok", None, 90_001.0, 1.0)], None)
    found = await database.events.get("e-1")
    assert found is not None and found[0].status == "handled"


async def test_latency_counts_from_the_receivers_accept(database: Database) -> None:
    """An event the receiver accepted 9 s before a worker first logged it took 10 s, not
    the worker's 1 s; a receiver's clock a little ahead counts as 0, never negative."""
    waited = dataclasses.replace(event(0), accepted_at=MINUTE - 9.0)
    ahead = dataclasses.replace(event(1), accepted_at=MINUTE + 20 + 5.0)
    for logged in (waited, ahead):
        await database.events.record(logged, [], None)
    latency = await database.events.latency(since=0.0)
    assert (latency.count, latency.p50_s, latency.p99_s) == (2, 0.0, 10.0)
    found = await database.events.get("e-0")
    assert found is not None and found[0].accepted_at == MINUTE - 9.0


async def test_the_attribute_columns_are_added_to_a_store_made_before_them(
    database: Database,
) -> None:
    await database.events.record(event(0), [], None)
    version = next(m.version for m in MIGRATIONS if m.name == "event attributes")
    async with database.engine.begin() as connection:
        for column in ("attributes", "accepted_at"):
            await connection.execute(sa.text(f"ALTER TABLE events DROP COLUMN {column}"))
        forget = schema_migrations.delete().where(schema_migrations.c.version == version)
        await connection.execute(forget)
    assert await migrate(database.engine) == [version]
    old = await database.events.get("e-0")
    assert old is not None and (old[0].attributes, old[0].accepted_at) == (None, None)
    kept = dataclasses.replace(event(1), attributes={"specversion": "1.0", "x": "y"})
    await database.events.record(kept, [], None)
    found = await database.events.get("e-1")
    assert found is not None and found[0].attributes == {"specversion": "1.0", "x": "y"}
