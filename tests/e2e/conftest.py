"""End to end: the whole service (receiver + worker + poller) against the simulators,
over a real RabbitMQ and a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from service.runtime import serve
from service.settings import Settings
from service.simulators.lab import VENDORS, Lab
from service.store import Database
from service.store.eventlog import EventQuery
from service.worker.registry import Registry
from tests.conftest import AMQP_URL, delete_topology
from tests.waiting import eventually

FAST = {
    "automation": {"poll_initial_s": 0.3, "poll_max_s": 0.6, "poll_interval_s": 0.05},
    "worker": {"retry_delays_s": [0.1, 0.2, 0.4, 0.8]},
    "http": {"publish_timeout_s": 2.0, "shutdown_grace_s": 5.0},
    "log": {"format": "json", "level": "warning"},
}


@dataclass
class Service:
    """The service running in-process on the lab's port; restartable."""

    lab: Lab
    settings: Settings
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    registry: Registry = field(default_factory=Registry)  # the user's handlers, if any

    async def start(self, mode: str = "all") -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(serve(self.settings, mode, self.registry, self.stop))
        if mode != "worker":
            await eventually(self._ready, what="the service is ready")

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await self.task
            self.task = None

    async def _ready(self) -> bool:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # raise what stopped it
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{self.lab.service_url}/readyz") as response,
            ):
                return response.status == 200
        except aiohttp.ClientError:
            return False


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab(run_duration_s=0.2).running() as running:
        yield running


@pytest.fixture
def make_service(lab: Lab, prefix: str, tmp_path: Path) -> Callable[..., Service]:
    def make(rules: list[dict[str, Any]], **sections: dict[str, Any]) -> Service:
        base: dict[str, Any] = {
            **FAST,
            "amqp": {"url": AMQP_URL, "exchange": f"{prefix}.events", "queue": f"{prefix}.worker",
                     "connect_retry_s": 0.2},
            "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'bridge.sqlite3'}"},
        }  # fmt: skip
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        base["automation"] = {**base["automation"], "callback_base_url": lab.service_url}
        return Service(lab, lab.settings(rules, base))

    return make


@pytest.fixture
async def service_factory(
    make_service: Callable[..., Service],
) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    started: list[Service] = []

    async def start(
        rules: list[dict[str, Any]], registry: Registry | None = None, **sections: dict[str, Any]
    ) -> Service:
        service = make_service(rules, **sections)
        service.registry = registry or service.registry
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.halt()
    if started:
        await delete_topology(started[0].settings)


async def drained(settings: Settings) -> bool:
    """Whether the work queue is empty: every event so far was handled and acked."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp.queue, passive=True)
        return queue.declaration_result.message_count == 0


async def logged_statuses(settings: Settings, subject: str) -> list[str]:
    """The event log's status of each event about `subject` (a Fact Sheet id), newest first."""
    database = Database(settings.store.url)
    try:
        found, _ = await database.events.search(EventQuery(subject=subject))
        return [event.status for event in found]
    finally:
        await database.close()


def received_inputs(lab: Lab, vendor: str) -> list[dict[str, Any]]:
    """The inputs each platform received for the runs it started, as it recorded them."""
    return lab.platforms[vendor].started_inputs()


__all__ = ["VENDORS", "Service", "drained", "eventually", "received_inputs"]
