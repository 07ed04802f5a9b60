"""The downstream's capacity (issue 13), in the in-memory worker against the UiPath
simulator over HTTP and a real (SQLite) store: a burst of events for one Fact Sheet
starts one run with the latest state; a target's limit holds, its waiting starts go in
order; a window closes on its own (the sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import structlog

from service.automation import capacity
from service.automation.completion import POLLED
from service.automation.starter import fact_sheet_of
from service.cloudevent import CloudEvent
from service.resources import Resources
from service.simulators.lab import HUMAN_USER, Lab
from service.store.runs import Run
from service.store.schema import waiting_starts
from service.testing import TestWorker, cloud_event
from tests.faults.platform_workers import count_in_flight
from tests.loglines import parse
from tests.waiting import eventually, poll_interval

pytestmark = pytest.mark.integration
_sequence = itertools.count(1)
log = structlog.get_logger("tests.capacity")


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab(run_duration_s=0.3).running() as running:
        yield running


def worker_for(lab: Lab, vendor: str = "uipath", **rule: Any) -> TestWorker:
    start = rule.pop("start", {})
    raw = lab.rule(vendor, **rule)
    raw["start"] = {**raw["start"], **start}
    settings = lab.settings(
        [raw],
        {
            # no poller: the test completes runs itself (completer), as callbacks would
            "automation": {"poll_initial_s": 3600.0, "poll_max_s": 3600.0,
                           "waiting_interval_s": 0.05},
            "worker": {"retry_delays_s": [0.05, 0.1]},
        },
    )  # fmt: skip
    return TestWorker(settings=settings, automation=True)


def changed(fact_sheet_id: str, name: str) -> CloudEvent:
    """LeanIX's FactSheetUpdatedEvent as the receiver publishes it: an architect renamed
    the Fact Sheet (each a newer transaction than the last)."""
    data = {
        "userId": HUMAN_USER, "type": "FactSheetUpdatedEvent",
        "transactionSequenceNumber": next(_sequence),
        "factSheet": {"id": fact_sheet_id, "name": name, "type": "Application"},
    }  # fmt: skip
    return cloud_event("leanix.factsheet.updated", data, subject=fact_sheet_id)


def resources_of(worker: TestWorker) -> Resources:
    return worker.resources


async def runs_of(worker: TestWorker) -> list[Run]:
    return list(reversed(await resources_of(worker).database.runs.search(limit=10_000)))


def nothing_waits(worker: TestWorker) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not await resources_of(worker).database.waiting.search()

    return check


def started_names(lab: Lab) -> list[str]:
    """The `name` input of each job UiPath was asked to start, in order."""
    return [orjson.loads(s["startInfo"]["InputArguments"])["name"] for s in lab.uipath.starts]


@contextlib.asynccontextmanager
async def completer(lab: Lab, worker: TestWorker) -> AsyncIterator[list[int]]:
    """Publish each run's completion once its platform says it ended (as the poller
    would, without its delays), and record the jobs in flight at UiPath each time it was
    asked to start one."""
    in_flight = count_in_flight(lab)
    resources = resources_of(worker)
    done: set[str] = set()

    async def complete() -> None:
        while True:
            for run in await resources.database.runs.search(status="running"):
                client = resources.runners[run.vendor]
                state = await client.status(run.run_id or "", run.target)
                if not state.terminal or run.correlation_id in done:
                    continue
                done.add(run.correlation_id)
                data = {"vendor": run.vendor, "runId": run.run_id, "status": state.status,
                        "vendorState": state.vendor_state}  # fmt: skip
                event = cloud_event(POLLED, data, id=str(uuid.uuid4()), subject=run.run_id)
                assert (await worker.publish(event)).succeeded
            await poll_interval()

    task = asyncio.create_task(complete())
    try:
        yield in_flight
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def all_written_back(worker: TestWorker, count: int) -> bool:
    runs = await runs_of(worker)
    return len(runs) == count and all(r.status == "written_back" for r in runs)


async def test_500_events_for_50_fact_sheets_within_a_window_start_50_runs_with_the_latest_state(
    lab: Lab,
) -> None:
    """The starter's part of 500 deliveries (the handler's own path is the next test's)."""
    async with worker_for(lab, coalesce="5m") as worker:
        resources = resources_of(worker)
        (rule,) = resources.rules
        sheets = [f"fs-{n:02}" for n in range(50)]
        began = time.perf_counter()
        for version in range(10):  # 10 edits of each, interleaved
            for sheet in sheets:
                event = changed(sheet, f"{sheet} v{version}")
                await capacity.submit(rule, event, fact_sheet_of(event), resources, log)
        print(f"\n500 events for 50 Fact Sheets recorded in {time.perf_counter() - began:.1f} s")
        database = resources.database
        waiting = await database.waiting.search(limit=None)
        assert len(waiting) == 50 and {w.events for w in waiting} == {10}
        assert lab.uipath.starts == []  # nothing starts inside the window
        async with database.engine.begin() as connection:  # the window closes (not 5 min)
            await connection.execute(sa.update(waiting_starts).values(due_at=time.time()))
        await eventually(lambda: len(lab.uipath.starts) == 50, timeout_s=30, what="50 runs")
        runs = await runs_of(worker)
        assert len(runs) == 50
        assert {run.fact_sheet_id: run.inputs["name"] for run in runs} == {
            s: f"{s} v9" for s in sheets
        }  # each with the latest state
        assert sorted(started_names(lab)) == sorted(f"{s} v9" for s in sheets)
        await eventually(nothing_waits(worker), what="every waiting start made and forgotten")


async def test_a_window_closes_by_itself_and_starts_one_run(lab: Lab) -> None:
    """Five deliveries of the handler inside the window: the sweeper starts one run."""
    async with worker_for(lab, coalesce="1.5s") as worker:
        began = time.monotonic()
        for version in range(5):
            assert (await worker.publish(changed("fs-1", f"v{version}"))).succeeded
        assert time.monotonic() - began < 1.5, "the test's premise: 5 events inside the window"
        await eventually(lambda: lab.uipath.starts, what="the run, when the window closed")
        assert started_names(lab) == ["v4"]
        assert len(await runs_of(worker)) == 1


async def test_a_target_never_has_more_runs_in_flight_than_its_limit(lab: Lab) -> None:
    async with worker_for(lab, start={"concurrency": 2}) as worker, completer(lab, worker) as seen:
        names = [f"app-{n:02}" for n in range(12)]
        for name in names:  # real Fact Sheets: each run's outcome is written back
            sheet = lab.leanix.add_fact_sheet("Application", name)
            assert (await worker.publish(changed(sheet, name))).succeeded
        database = resources_of(worker).database
        waiting = len(await database.waiting.search(limit=None))
        assert waiting >= 1 and waiting + len(await runs_of(worker)) == 12  # the rest wait

        await eventually(
            lambda: all_written_back(worker, 12), timeout_s=30, what="12 runs, 2 at a time"
        )
        assert max(seen) <= 2 and max(seen) == 2  # the limit, and it was used
        assert started_names(lab) == names  # first come, first started
        await eventually(nothing_waits(worker), what="every waiting start made and forgotten")


async def test_a_start_the_platform_refuses_for_now_keeps_its_place_at_the_head(
    lab: Lab, log_lines: io.StringIO
) -> None:
    """A Leapwork schedule runs once at a time and answers a second start with 410: with
    a limit of 2 on one schedule, the start behind the first is deferred (retried on the
    worker's delays, never dead-lettered) and holds the rest, so the runs start in the
    order their events came."""
    lab.leapwork.run_duration_s = 0.3
    async with worker_for(lab, vendor="leapwork", start={"concurrency": 2}) as worker:
        async with completer(lab, worker):
            names = [f"job-{n}" for n in range(5)]
            for name in names:
                sheet = lab.leanix.add_fact_sheet("Application", name)
                assert (await worker.publish(changed(sheet, name))).succeeded
            await eventually(lambda: all_written_back(worker, 5), timeout_s=30, what="5 runs")
        await eventually(nothing_waits(worker), what="every waiting start made and forgotten")
    deferred = [line for line in parse(log_lines) if line.get("event") == "run.start_deferred"]
    print(f"\n{len(deferred)} starts deferred, first: {deferred[0]['error'] if deferred else ''}")
    assert deferred and "410" in deferred[0]["error"]  # the schedule was busy
    assert {line["holding"] for line in deferred} <= set(range(4))
    assert [run.variables["name"] for run in lab.leapwork.runs.values()] == names


async def test_starts_held_while_the_platform_is_down_go_in_order_when_it_is_back(
    lab: Lab, log_lines: io.StringIO
) -> None:
    """UiPath down: the first start fails and holds its target (its slots free, nothing
    behind it goes); back up, the runs start in the order their events came."""
    lab.uipath.faults.fail(503, times=10**6)
    async with worker_for(lab, start={"concurrency": 3}) as worker, completer(lab, worker):
        names = [f"app-{n}" for n in range(4)]
        for name in names:
            sheet = lab.leanix.add_fact_sheet("Application", name)
            assert (await worker.publish(changed(sheet, name))).succeeded
        store = resources_of(worker).database.waiting

        async def retried(times: int) -> bool:
            rows = await store.search(limit=None)
            return len(rows) == 4 and rows[0].attempts >= times

        await eventually(lambda: retried(1), timeout_s=30, what="the head failed, 3 behind it")
        attempts = (await store.search(limit=1))[0].attempts
        await eventually(lambda: retried(attempts + 1), timeout_s=30, what="it retried")
        rows = await store.search(limit=None)
        assert [r.attempts for r in rows[1:]] == [0, 0, 0]  # never tried behind the head
        assert "503" in (rows[0].last_error or "")
        lab.uipath.faults.reset()
        await eventually(lambda: all_written_back(worker, 4), timeout_s=30, what="4 runs")
    assert started_names(lab) == names
    deferred = [line for line in parse(log_lines) if line.get("event") == "run.start_deferred"]
    assert {line["holding"] for line in deferred} <= {0, 1, 2, 3}  # as the events came in
    assert {line["event_id"] for line in deferred} == {rows[0].event_id}  # the head only
    assert deferred[-1]["holding"] == 3 and deferred[-1]["attempts"] >= 2
