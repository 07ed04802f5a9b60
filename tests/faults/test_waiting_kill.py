"""A worker SIGKILLed while runs wait for their target's slot loses none of them
(issue 13): the waiting starts are rows in the store, the events that asked for them are
acked, and the next worker's poller and sweeper start every one, one at a time, in order.

A real `python -m service worker` over RabbitMQ and an SQLite store, against the UiPath
simulator; runs complete by polling (no callbacks), as in a worker-only deployment.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.settings import Settings
from service.simulators.lab import Lab
from service.store import Database
from tests import children
from tests.faults.platform_workers import (
    count_in_flight,
    publish,
    queued,
    renamed,
    start_worker,
    started_names,
    statuses,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration
RUNS = 4


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab(run_duration_s=0.6).running() as running:
        yield running


async def test_a_worker_killed_while_runs_wait_loses_none(
    lab: Lab, bus: Settings, tmp_path: Path
) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    in_flight = count_in_flight(lab)
    lab.uipath.run_duration_s = 30.0  # the first run holds the slot until the kill
    names = [f"app-{n}" for n in range(RUNS)]
    events = renamed(lab, names)

    database = Database(store_url)
    await database.open()  # migrated before the worker starts, so it can be looked at
    await database.close()
    first = await start_worker(lab, bus, store_url, tmp_path / "first.log")
    second: asyncio.subprocess.Process | None = None
    try:
        await publish(bus, events)

        async def one_runs_the_rest_wait() -> bool:
            return await statuses(store_url) == ({"running": 1}, RUNS - 1)

        await eventually(one_runs_the_rest_wait, 30, "one run started, the others waiting")
        waiting = await queued(store_url)  # concurrent deliveries: arrival order is theirs
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        lab.uipath.run_duration_s = 0.6
        for job in lab.uipath.jobs.values():  # the first run ends while no worker is up
            job.state = "Successful"
            job.outputs = {}

        second = await start_worker(lab, bus, store_url, tmp_path / "second.log")

        async def all_written_back() -> bool:
            return await statuses(store_url) == ({"written_back": RUNS}, 0)

        await eventually(all_written_back, 60, f"{RUNS} runs, written back")
        assert await children.stop(second) == 0
    finally:
        await children.reap(first, second)
    started = started_names(lab)
    assert sorted(started) == names and started[1:] == waiting  # each once, first come first

    assert max(in_flight) == 1  # never two at once, across the kill
