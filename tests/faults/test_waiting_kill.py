"""A worker SIGKILLed while runs wait for their target's slot loses none of them
(issue 13): the waiting starts are rows in the store, the events that asked for them are
acked, and the next worker's poller and sweeper start every one, one at a time, in order.

A real `python -m service worker` over RabbitMQ and an SQLite store, against the UiPath
simulator; runs complete by polling (no callbacks), as in a worker-only deployment.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest

from service.bus import topology
from service.cloudevent import encode
from service.settings import Settings, from_mapping
from service.simulators.lab import HUMAN_USER, Lab
from service.simulators.leanix import DEFAULT_API_TOKEN
from service.store import Database
from service.testing import cloud_event
from tests import children
from tests.conftest import AMQP_URL, delete_topology, settings_tree
from tests.faults.conftest import REPO
from tests.waiting import eventually

pytestmark = pytest.mark.integration
RUNS = 4
FINAL = {"Successful", "Faulted", "Stopped"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # strings and numbers


def config(lab: Lab) -> str:
    """The worker's configuration: the lab's LeanIX and UiPath, one rule limited to one
    run at a time, quick polling."""
    rule = lab.rule("uipath")
    rule["start"]["concurrency"] = 1
    sections = {
        "automation": {"poll_initial_s": 0.2, "poll_max_s": 0.4, "poll_interval_s": 0.05,
                       "waiting_interval_s": 0.1},
        "worker": {"retry_delays_s": [0.2, 0.4]},
        "clients.leanix": {"base_url": lab.leanix.base_url, "api_token": DEFAULT_API_TOKEN},
        "clients.uipath": lab.platforms["uipath"].clients(),
    }  # fmt: skip
    lines = [f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items())
             for name, table in sections.items()]  # fmt: skip
    lines.append("[[rules]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in rule.items()))
    return "\n".join(lines)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab(run_duration_s=0.6).running() as running:
        yield running


@pytest.fixture
async def bus(prefix: str) -> AsyncIterator[Settings]:
    settings = from_mapping(settings_tree(prefix))
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:  # the worker's exchange and queue, bound: events wait there
        await topology.declare(await connection.channel(), settings.amqp)
    yield settings
    await delete_topology(settings, 0.2, 0.4)


async def _worker(lab: Lab, bus: Settings, store_url: str, log: Path) -> asyncio.subprocess.Process:
    path = log.with_suffix(".toml")
    path.write_text(config(lab))
    env = {
        **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
        "SERVICE_CONFIG": str(path), "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
        "AMQP_URL": AMQP_URL, "AMQP_EXCHANGE": bus.amqp.exchange, "AMQP_QUEUE": bus.amqp.queue,
        "STORE_URL": store_url, "LOG_FORMAT": "json",
    }  # fmt: skip
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "worker", cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip


async def _publish(bus: Settings, bodies: list[tuple[str, bytes]]) -> None:
    """Publish the events in order, as the receiver would (confirmed, routed)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(bus.amqp.exchange)
        for event_id, body in bodies:
            message = aio_pika.Message(body, message_id=event_id)
            await exchange.publish(message, "leanix.factsheet.updated", mandatory=True)


async def _statuses(store_url: str) -> tuple[dict[str, int], int]:
    """The runs by status, and how many starts wait."""
    database = Database(store_url)
    try:
        runs = await database.runs.search(limit=1000)
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run.status] = statuses.get(run.status, 0) + 1
        return statuses, len(await database.waiting.search(limit=None))
    finally:
        await database.close()


async def _queued(store_url: str) -> list[str]:
    """The names of the waiting starts, in the order they will start."""
    database = Database(store_url)
    try:
        waiting = await database.waiting.search(limit=None)
        return [orjson.loads(w.event)["data"]["factSheet"]["name"] for w in waiting]
    finally:
        await database.close()


async def test_a_worker_killed_while_runs_wait_loses_none(
    lab: Lab, bus: Settings, tmp_path: Path
) -> None:
    store_url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    in_flight: list[int] = []
    create = lab.uipath._create

    def counting(*args: Any) -> Any:
        job = create(*args)
        in_flight.append(sum(j.state not in FINAL for j in lab.uipath.jobs.values()))
        return job

    lab.uipath._create = counting
    lab.uipath.run_duration_s = 30.0  # the first run holds the slot until the kill
    names = [f"app-{n}" for n in range(RUNS)]
    events = []
    for name in names:
        sheet = lab.leanix.add_fact_sheet("Application", name)
        data = {"userId": HUMAN_USER, "type": "FactSheetUpdatedEvent",
                "factSheet": {"id": sheet, "name": name, "type": "Application"}}  # fmt: skip
        event = cloud_event("leanix.factsheet.updated", data, subject=sheet)
        events.append((event.id, encode(event)))

    database = Database(store_url)
    await database.open()  # migrated before the worker starts, so it can be looked at
    await database.close()
    first = await _worker(lab, bus, store_url, tmp_path / "first.log")
    second: asyncio.subprocess.Process | None = None
    try:
        await _publish(bus, events)

        async def one_runs_the_rest_wait() -> bool:
            return await _statuses(store_url) == ({"running": 1}, RUNS - 1)

        await eventually(one_runs_the_rest_wait, 30, "one run started, the others waiting")
        queued = await _queued(store_url)  # concurrent deliveries: arrival order is theirs
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        lab.uipath.run_duration_s = 0.6
        for job in lab.uipath.jobs.values():  # the first run ends while no worker is up
            job.state = "Successful"
            job.outputs = {}

        second = await _worker(lab, bus, store_url, tmp_path / "second.log")

        async def all_written_back() -> bool:
            return await _statuses(store_url) == ({"written_back": RUNS}, 0)

        await eventually(all_written_back, 60, f"{RUNS} runs, written back")
        assert await children.stop(second) == 0
    finally:
        await children.reap(first, second)
    started = [orjson.loads(s["startInfo"]["InputArguments"])["name"] for s in lab.uipath.starts]
    assert sorted(started) == names and started[1:] == queued  # each once, first come first

    assert max(in_flight) == 1  # never two at once, across the kill
