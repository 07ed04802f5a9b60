"""Fault tests: worker processes killed or stopped mid-handler, RabbitMQ restarted."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import orjson
import pytest

from service.bus import topology
from service.settings import Settings, from_mapping
from tests.conftest import AMQP_URL, delete_topology, settings_tree
from tests.waiting import eventually

REPO = Path(__file__).parents[2]
FAULT_DELAYS = (0.3, 0.6, 1.2, 2.4)


@dataclass
class Worker:
    """A `python -m service worker` process with tests.faulty_handlers loaded."""

    process: asyncio.subprocess.Process

    async def wait_exit(self, timeout_s: float = 30) -> int:
        async with asyncio.timeout(timeout_s):
            return await self.process.wait()


@dataclass
class Files:
    started: Path
    effects: Path

    def started_lines(self) -> list[list[str]]:
        text = self.started.read_text() if self.started.exists() else ""
        return [line.split() for line in text.splitlines()]

    def effect_lines(self) -> list[str]:
        return self.effects.read_text().splitlines() if self.effects.exists() else []


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path / "started.txt", tmp_path / "effects.txt")


@pytest.fixture
def fault_settings(prefix: str) -> Settings:
    tree = settings_tree(prefix)
    tree["worker"] = {"handler_timeout_s": 2.0, "retry_delays_s": [0.3, 0.6, 1.2, 2.4]}
    return from_mapping(tree)


@pytest.fixture
async def start_worker(
    fault_settings: Settings, files: Files, tmp_path: Path
) -> AsyncIterator[Callable[..., asyncio.Future[Worker]]]:
    config = tmp_path / "worker.toml"
    # A 3 s claim lease, not 10: the killed worker's claim lapses, and its event is taken
    # over, 7 s sooner (the lease's length is not what these tests show).
    config.write_text(
        "[worker]\nhandler_timeout_s = 2.0\nretry_delays_s = [0.3, 0.6, 1.2, 2.4]\n"
        "claim_lease_s = 3.0\n"
    )
    started: list[Worker] = []

    async def start(slow_s: float) -> Worker:
        env = {
            **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
            "SERVICE_CONFIG": str(config),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": "0",
            "AMQP_URL": AMQP_URL,
            "AMQP_EXCHANGE": fault_settings.amqp.exchange,
            "AMQP_QUEUE": fault_settings.amqp.queue,
            "STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}",
            "HANDLER_MODULES": "tests.faulty_handlers",
            "FAULT_STARTED_FILE": str(files.started),
            "FAULT_EFFECTS_FILE": str(files.effects),
            "FAULT_SLOW_S": str(slow_s),
            "LOG_FORMAT": "json",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "worker", cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        worker = Worker(process)
        started.append(worker)
        return worker

    yield start  # type: ignore[misc]
    for worker in started:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()
    await delete_topology(fault_settings, *FAULT_DELAYS)


@pytest.fixture
async def bus(prefix: str) -> AsyncIterator[Settings]:
    """The settings of a worker's exchange and queue, declared and bound: events published
    before a worker starts wait there."""
    settings = from_mapping(settings_tree(prefix))
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await topology.declare(await connection.channel(), settings.amqp)
    yield settings
    await delete_topology(settings, 0.2, 0.4)


async def publish_event(settings: Settings, event_id: str) -> None:
    """Publish one CloudEvent once the worker's queue is bound to the exchange.

    The worker declares its queue before it binds it, so a queue that exists may not yet
    receive anything: publish as mandatory and try again while the broker returns it.
    """
    body = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "test", "type": "leanix.factsheet.updated",
         "time": "2024-01-01T00:00:00Z", "data": {}}
    )  # fmt: skip
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)

        async def routed() -> bool:
            exchange = await channel.get_exchange(settings.amqp.exchange)
            message = aio_pika.Message(
                body, message_id=event_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            try:
                await exchange.publish(message, "leanix.factsheet.updated", mandatory=True)
            except aio_pika.exceptions.DeliveryError:
                return False  # returned: no binding yet
            return True

        await eventually(routed, 30, "the event was routed to the worker's queue")


async def queue_depth(settings: Settings) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp.queue, passive=True)
        return queue.declaration_result.message_count or 0


async def wait_for(check: Callable[[], object], timeout_s: float = 30, what: str = "") -> None:
    await eventually(check, timeout_s, what)
