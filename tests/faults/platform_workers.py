"""Worker processes (`python -m service worker`) against the lab's LeanIX and UiPath, for
the capacity tests: their configuration (one rule with `start.concurrency`, quick
polling), starting them, publishing events to them, and reading their store."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aio_pika
import orjson

from service.cloudevent import encode
from service.settings import Settings
from service.simulators.lab import HUMAN_USER, Lab
from service.simulators.leanix import DEFAULT_API_TOKEN
from service.store import Database
from service.testing import cloud_event
from tests.conftest import AMQP_URL
from tests.faults.conftest import REPO

FINAL = {"Successful", "Faulted", "Stopped"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # strings and numbers


def config(lab: Lab, concurrency: int) -> str:
    """The worker's configuration: the lab's LeanIX and UiPath, one rule limited to
    `concurrency` runs at a time, quick polling."""
    rule = lab.rule("uipath")
    rule["start"]["concurrency"] = concurrency
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


async def start_worker(
    lab: Lab, bus: Settings, store_url: str, log: Path, concurrency: int = 1
) -> asyncio.subprocess.Process:
    """A worker on `bus`'s queue and the store at `store_url`; its JSON log in `log`."""
    path = log.with_suffix(".toml")
    path.write_text(config(lab, concurrency))
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


def count_in_flight(lab: Lab) -> list[int]:
    """The jobs in flight at UiPath each time it is asked to start one (the new one too)."""
    in_flight: list[int] = []
    create = lab.uipath._create

    def counting(*args: Any) -> Any:
        job = create(*args)
        in_flight.append(sum(j.state not in FINAL for j in lab.uipath.jobs.values()))
        return job

    lab.uipath._create = counting
    return in_flight


def renamed(lab: Lab, names: list[str]) -> list[tuple[str, bytes]]:
    """For each name, a Fact Sheet in the lab's LeanIX and an architect's update of it:
    (event id, CloudEvent on the wire)."""
    events = []
    for name in names:
        sheet = lab.leanix.add_fact_sheet("Application", name)
        data = {"userId": HUMAN_USER, "type": "FactSheetUpdatedEvent",
                "factSheet": {"id": sheet, "name": name, "type": "Application"}}  # fmt: skip
        event = cloud_event("leanix.factsheet.updated", data, subject=sheet)
        events.append((event.id, encode(event)))
    return events


def started_names(lab: Lab) -> list[str]:
    """The `name` input of each job UiPath was asked to start, in order."""
    return [orjson.loads(s["startInfo"]["InputArguments"])["name"] for s in lab.uipath.starts]


async def publish(bus: Settings, bodies: list[tuple[str, bytes]]) -> None:
    """Publish the events in order, as the receiver would (confirmed, routed)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(bus.amqp.exchange)
        for event_id, body in bodies:
            message = aio_pika.Message(body, message_id=event_id)
            await exchange.publish(message, "leanix.factsheet.updated", mandatory=True)


async def statuses(store_url: str) -> tuple[dict[str, int], int]:
    """The runs by status, and how many starts wait."""
    database = Database(store_url)
    try:
        runs = await database.runs.search(limit=1000)
        found: dict[str, int] = {}
        for run in runs:
            found[run.status] = found.get(run.status, 0) + 1
        return found, len(await database.waiting.search(limit=None))
    finally:
        await database.close()


async def queued(store_url: str) -> list[str]:
    """The names of the waiting starts, in the order they will start."""
    database = Database(store_url)
    try:
        waiting = await database.waiting.search(limit=None)
        return [orjson.loads(w.event)["data"]["factSheet"]["name"] for w in waiting]
    finally:
        await database.close()
