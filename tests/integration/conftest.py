"""Integration fixtures: a real RabbitMQ, the real receiver app, and a bus inspector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiohttp.test_utils import TestClient, TestServer

from service.bus.broker import Broker
from service.bus.publisher import PUBLISHERS
from service.settings import Settings
from service.store import Database
from service.web import create_app
from tests.conftest import AMQP_URL, delete_topology
from tests.senders import Request
from tests.tcpproxy import TcpProxy
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration


class Inspector:
    """Looks at this test's exchange and queues through its own connection."""

    def __init__(self, connection: AbstractRobustConnection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings
        self.observed: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def observe(self) -> None:
        """Bind a private queue to the exchange: every later event lands in `observed`."""
        channel = await self.connection.channel()
        exchange = await channel.declare_exchange(
            self.settings.amqp.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        await queue.consume(self._collect)

    async def _collect(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        await self.observed.put(message)

    async def next_event(self, timeout_s: float = 10.0) -> AbstractIncomingMessage:
        async with asyncio.timeout(timeout_s):
            return await self.observed.get()

    async def count(self, queue: str) -> int:
        channel = await self.connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return declared.declaration_result.message_count or 0
        finally:
            await channel.close()

    async def wait_count(self, queue: str, expected: int, timeout_s: float = 10.0) -> None:
        """Poll the queue depth until it is `expected`, within a deadline."""
        seen = None
        try:
            async with asyncio.timeout(timeout_s):
                while (seen := await self.count(queue)) != expected:
                    await poll_interval()
        except TimeoutError:
            held = f"{queue} held {seen}, not {expected}, for {timeout_s} s"
            raise AssertionError(held) from None

    async def get(self, queue: str, timeout_s: float = 10.0) -> AbstractIncomingMessage:
        """Take one message from a queue, polling with a deadline."""
        channel = await self.connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        async with asyncio.timeout(timeout_s):
            while (message := await declared.get(fail=False)) is None:
                await poll_interval()
        await message.ack()
        return message

    async def delete_all(self) -> None:
        await delete_topology(self.settings)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(store={"url": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite store of this test's own, apart from `settings`' (a consumer
    keeps its event log and claims in one)."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'consumer.sqlite3'}")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The store of `settings`, migrated (an SQLite file of this test's own)."""
    database = Database(settings.store.url)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def inspector(settings: Settings) -> AsyncIterator[Inspector]:
    connection = await aio_pika.connect_robust(AMQP_URL)
    inspector = Inspector(connection, settings)
    yield inspector
    await inspector.delete_all()
    await connection.close()


# The modules whose subject is publishing run with each publisher (amqp.publisher); the
# others, whose subject lies past the publish (admin, console, fuzzed bodies, the worker),
# run with the default one, which the first list proves equal to aio-pika's own publish.
BOTH_PUBLISHERS = {
    "test_broker", "test_ingest", "test_outage", "test_pull", "test_retry", "test_deadletters",
}  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = any("publisher" in m.args[0] for m in metafunc.definition.iter_markers("parametrize"))
    if "publisher" in metafunc.fixturenames and not marked:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        names = PUBLISHERS if module in BOTH_PUBLISHERS else (Settings().amqp.publisher,)
        metafunc.parametrize("publisher", names, indirect=True)


@pytest.fixture
def publisher(request: pytest.FixtureRequest) -> str:
    """The publisher (amqp.publisher) this test's broker uses."""
    return str(request.param)


@pytest.fixture
async def broker(settings: Settings, inspector: Inspector, publisher: str) -> AsyncIterator[Broker]:
    broker = Broker(replace(settings.amqp, publisher=publisher))
    await broker.start()
    await broker.wait_ready(15)
    yield broker
    await broker.close()


@pytest.fixture
async def client(settings: Settings, broker: Broker) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(settings, broker))) as client:
        yield client


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy()
    await proxy.start()
    yield proxy
    await proxy.close()


async def post(client: TestClient[Any, Any], request: Request) -> tuple[int, str, bytes, Any]:
    """POST a sender's request; (status, content type, body, headers)."""
    async with client.post(request.path, data=request.body, headers=request.headers) as response:
        return response.status, response.content_type, await response.read(), response.headers
