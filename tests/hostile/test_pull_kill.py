"""A `python -m service pull` process SIGKILLed between publish and commit loses nothing,
and the worker handles nothing twice.

The simulator holds the cursor commit; the puller, having published and had every event
confirmed, is killed while it waits. Its commit is never applied. A second puller process
takes the lapsed lease over, fetches the same batch again and publishes it under the same
CloudEvent ids; the worker's claims (real PostgreSQL) handle each event once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from service.bus import topology
from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.settings import Settings, from_mapping
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.store import Database
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests import children
from tests.conftest import AMQP_URL, delete_topology, postgres_database, settings_tree
from tests.waiting import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
LEASE_S = 2.0
EVENTS = 5


async def _puller(
    settings: Settings, store_url: str, sim: LeanixSimulator, subscription: str, log: Path
) -> asyncio.subprocess.Process:
    config = log.with_suffix(".toml")
    config.write_text(f"[leanix_pull]\nlease_s = {LEASE_S}\ntimeout_s = 1\nretry_s = 0.2\n")
    env = {
        **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
        "SERVICE_CONFIG": str(config), "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
        "AMQP_URL": AMQP_URL, "AMQP_EXCHANGE": settings.amqp.exchange,
        "AMQP_QUEUE": settings.amqp.queue, "STORE_URL": store_url,
        "LEANIX_BASE_URL": sim.base_url, "LEANIX_API_TOKEN": DEFAULT_API_TOKEN,
        "LEANIX_PULL_SUBSCRIPTION_ID": subscription, "LOG_FORMAT": "json",
    }  # fmt: skip
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "pull", cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=out,
        )  # fmt: skip


@pytest.fixture
async def store_url(prefix: str) -> AsyncIterator[str]:
    async with postgres_database(prefix) as url:
        yield url.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
async def bus(prefix: str) -> AsyncIterator[Settings]:
    settings = from_mapping(settings_tree(prefix) | {"store": {"url": "sqlite+aiosqlite://"}})
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await topology.declare(await connection.channel(), settings.amqp)
    yield settings
    await delete_topology(settings)


async def _depth(settings: Settings) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        queue = await (await connection.channel()).declare_queue(settings.amqp.queue, passive=True)
        return queue.declaration_result.message_count or 0


async def test_a_puller_killed_before_its_commit_loses_nothing_and_doubles_nothing(
    bus: Settings, store_url: str, tmp_path: Path
) -> None:
    sim = LeanixSimulator()
    async with sim.serve():
        subscription = sim.pull.subscribe()
        fact_sheet = sim.add_fact_sheet()
        for _ in range(EVENTS):
            sim.pull_event(fact_sheet)
        sim.pull.hold_commits.clear()
        first = await _puller(bus, store_url, sim, subscription, tmp_path / "first.log")
        second: asyncio.subprocess.Process | None = None
        try:
            await eventually(lambda: sim.pull.held, 30, "the first puller's commit arrived")
            assert await _depth(bus) == EVENTS  # published and confirmed before the commit
            first.send_signal(signal.SIGKILL)
            await first.wait()
            killed_at = time.time()
            await eventually(sim.pull.callers_gone, 10, "the simulator saw the caller go")
            sim.pull.hold_commits.set()
            await eventually(lambda: not sim.pull.held, 10, "the held commit ended")
            feed = sim.pull.feeds[subscription]
            assert (feed.cursor, feed.commits) == (0, [])

            second = await _puller(bus, store_url, sim, subscription, tmp_path / "second.log")
            await eventually(lambda: feed.cursor == EVENTS, 4 * LEASE_S + 20, "taken over")
            took_s = time.time() - killed_at
            print(f"\nthe second puller committed {took_s:.1f} s after the SIGKILL")
            assert await _depth(bus) == 2 * EVENTS  # each event twice, under one id
            assert await children.stop(second) == 0
        finally:
            await children.reap(first, second)
    handled = await _work_off(bus, store_url)
    assert len(handled) == EVENTS and len(set(handled)) == EVENTS


async def _work_off(settings: Settings, store_url: str) -> list[str]:
    """Run the worker over the queue with one idempotent handler; the ids it handled."""
    handled: list[str] = []
    registry = Registry()

    @registry.handler("leanix.factsheet.*", idempotent=True)
    async def once(event: CloudEvent, context: Context) -> None:
        handled.append(event.id)

    database = Database(store_url)
    broker = Broker(settings.amqp)
    await broker.start()
    try:
        await broker.wait_ready(15)
        consumer = Consumer(settings, broker, registry, database=database)
        await consumer.start()
        try:
            await eventually(lambda: len(handled) >= EVENTS, 20, "every event handled")
            await eventually(lambda: _empty(settings), 20, "the queue drained")
        finally:
            await consumer.stop(5)
    finally:
        await broker.close()
        await database.close()
    return handled


async def _empty(settings: Settings) -> bool:
    return await _depth(settings) == 0
