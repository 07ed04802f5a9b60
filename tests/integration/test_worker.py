"""Worker over the real broker: handlers get events; failures are dead-lettered with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.errors import RejectEvent
from service.settings import Settings
from service.store import Database
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests import senders
from tests.integration.conftest import Inspector, post

pytestmark = pytest.mark.integration


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
async def consumer(
    settings: Settings, broker: Broker, registry: Registry, store: Database
) -> AsyncIterator[Consumer]:
    consumer = Consumer(settings, broker, registry, database=store)
    await consumer.start()
    yield consumer
    await consumer.stop(5)


async def test_a_registered_handler_receives_the_event(
    client: TestClient[Any, Any], registry: Registry, consumer: Consumer, inspector: Inspector
) -> None:
    received: asyncio.Queue[tuple[CloudEvent, Context]] = asyncio.Queue()

    @registry.handler("leanix.factsheet.*")
    async def on_fact_sheet(event: CloudEvent, context: Context) -> None:
        await received.put((event, context))

    request = senders.leanix()
    status, _, body, _ = await post(client, request)
    assert status == 202
    async with asyncio.timeout(10):
        event, context = await received.get()
    assert event.id == orjson.loads(body)["id"]
    assert event.type == "leanix.factsheet.created"
    assert event.data == orjson.loads(request.body)
    assert (context.attempt, context.redelivered) == (1, False)
    assert context.run_clients == {}  # a worker without credentials: no clients
    await inspector.wait_count(inspector.settings.amqp.queue, 0)


async def test_every_matching_handler_runs_and_others_do_not(
    client: TestClient[Any, Any], registry: Registry, consumer: Consumer
) -> None:
    calls: asyncio.Queue[str] = asyncio.Queue()

    async def record(event: CloudEvent, context: Context) -> None:
        await calls.put(event.type)

    registry.add("uipath.job.*", record, name="jobs")
    registry.add("uipath.#", record, name="all-uipath")
    registry.add("leanix.#", record, name="leanix")
    await post(client, senders.uipath())
    async with asyncio.timeout(10):
        seen = [await calls.get(), await calls.get()]
    assert seen == ["uipath.job.completed", "uipath.job.completed"]
    assert calls.empty()


@pytest.mark.parametrize(
    "error", [RuntimeError("vendor exploded"), RejectEvent("fact sheet is archived")]
)
async def test_a_failing_handler_dead_letters_the_event_with_the_reason(
    client: TestClient[Any, Any],
    registry: Registry,
    consumer: Consumer,
    inspector: Inspector,
    error: Exception,
) -> None:
    @registry.handler("robocorp.#", name="failing")
    async def failing(event: CloudEvent, context: Context) -> None:
        raise error

    status, _, body, _ = await post(client, senders.robocorp())
    assert status == 202
    dead = await inspector.get(inspector.settings.amqp.dead_letter_queue)
    assert dead.message_id == orjson.loads(body)["id"]
    assert dead.routing_key == "robocorp.process_run.completed"
    headers = dead.headers
    assert str(error) in str(headers["x-bridge-error"])
    assert type(error).__name__ in str(headers["x-bridge-error"])
    assert list(headers["x-bridge-failed-handlers"]) == ["failing"]  # type: ignore[arg-type]
    assert orjson.loads(dead.body)["id"] == dead.message_id
    await inspector.wait_count(inspector.settings.amqp.queue, 0)


async def test_an_event_without_a_handler_is_acked_not_dead_lettered(
    client: TestClient[Any, Any], consumer: Consumer, inspector: Inspector
) -> None:
    await post(client, senders.workato())
    await inspector.wait_count(inspector.settings.amqp.queue, 0)
    assert await inspector.count(inspector.settings.amqp.dead_letter_queue) == 0


async def test_a_message_that_is_not_a_cloudevent_is_dead_lettered(
    broker: Broker, consumer: Consumer, inspector: Inspector
) -> None:
    await broker.publish(b"garbage", routing_key="leanix.x.y", message_id="m-1", timeout_s=5)
    dead = await inspector.get(inspector.settings.amqp.dead_letter_queue)
    assert dead.body == b"garbage"
    assert "not a CloudEvent" in str(dead.headers["x-bridge-error"])


async def test_handlers_run_concurrently_up_to_the_prefetch(
    make_settings: Callable[..., Settings], broker: Broker, registry: Registry, store: Database
) -> None:
    settings = make_settings(worker={"prefetch": 3})
    inside = 0
    peak = 0
    three_inside = asyncio.Event()
    release = asyncio.Event()

    @registry.handler("#")
    async def slow(event: CloudEvent, context: Context) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        if inside == 3:
            three_inside.set()
        await release.wait()
        inside -= 1

    consumer = Consumer(settings, broker, registry, database=store)
    await consumer.start()
    for n in range(5):
        await broker.publish(
            _event_body(n), routing_key="leanix.factsheet.updated", message_id=f"c{n}", timeout_s=5
        )
    async with asyncio.timeout(10):
        await three_inside.wait()
    release.set()
    await consumer.stop(5)
    assert peak == 3


def _event_body(n: int) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"c{n}",
            "source": "test",
            "type": "leanix.factsheet.updated",
            "time": "2024-01-01T00:00:00Z",
            "data": {},
        }
    )


async def test_stop_waits_for_handlers_in_flight(
    settings: Settings, broker: Broker, registry: Registry, inspector: Inspector, store: Database
) -> None:
    started = asyncio.Event()
    finished = asyncio.Event()

    @registry.handler("#")
    async def slowish(event: CloudEvent, context: Context) -> None:
        started.set()
        await asyncio.sleep(0.3)  # simulated work inside the handler, not a wait for a result
        finished.set()

    consumer = Consumer(settings, broker, registry, database=store)
    await consumer.start()
    await broker.publish(_event_body(1), routing_key="a.b.c", message_id="s1", timeout_s=5)
    async with asyncio.timeout(10):
        await started.wait()
    await consumer.stop(5)
    assert finished.is_set()
    await inspector.wait_count(settings.amqp.queue, 0)
