"""Two worker processes share a target's limit (issue 13): with `start.concurrency = 2`
on PostgreSQL, the runs in flight at UiPath never exceed 2 across both workers, and every
event's run starts once and is written back once.

Two real `python -m service worker` processes on one RabbitMQ queue and one PostgreSQL
store, against the UiPath simulator; runs complete by polling, so a run one worker
started may end in the other, whose sweeper and completions start the next ones.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.settings import Settings
from service.simulators.lab import Lab
from service.store import Database
from tests import children
from tests.conftest import postgres_database
from tests.faults.platform_workers import (
    count_in_flight,
    publish,
    renamed,
    start_worker,
    started_names,
    statuses,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration
RUNS = 8
LIMIT = 2


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab(run_duration_s=0.4).running() as running:
        yield running


@pytest.fixture
async def store_url(prefix: str) -> AsyncIterator[str]:
    async with postgres_database(prefix) as url:
        database = Database(url)
        await database.open()  # migrated once, before the workers race to
        await database.close()
        yield url


async def test_two_workers_never_exceed_the_targets_limit(
    lab: Lab, bus: Settings, store_url: str, tmp_path: Path
) -> None:
    in_flight = count_in_flight(lab)
    names = [f"app-{n:02}" for n in range(RUNS)]
    events = renamed(lab, names)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    began = time.monotonic()
    workers = await asyncio.gather(
        *(start_worker(lab, bus, store_url, log, concurrency=LIMIT) for log in logs)
    )
    try:
        await publish(bus, events)

        async def all_written_back() -> bool:
            return await statuses(store_url) == ({"written_back": RUNS}, 0)

        await eventually(all_written_back, 60, f"{RUNS} runs, written back")
        print(f"\n{RUNS} runs, {LIMIT} at a time, two workers: {time.monotonic() - began:.1f} s")
        assert [await children.stop(worker) for worker in workers] == [0, 0]
    finally:
        await children.reap(*workers)
    assert sorted(started_names(lab)) == names  # each started once
    assert max(in_flight) == LIMIT  # the limit held across both workers, and was used
    written = Counter(m["fact_sheet_id"] for m in lab.leanix.mutations)
    assert sorted(written.values()) == [1] * RUNS  # each written back once
    started_by = [sum(b'"run.started"' in line for line in log.read_bytes().splitlines())
                  for log in logs]  # fmt: skip
    assert sum(started_by) == RUNS
    print(f"runs started by each worker: {started_by}")
