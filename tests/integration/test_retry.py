"""Retries by RabbitMQ itself: TTL queues, our own attempt count, then the dead-letter queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.errors import RetryLater, VendorUnavailable
from service.settings import Settings
from service.store import Database
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests.integration.conftest import Inspector
from tests.waiting import eventually

pytestmark = pytest.mark.integration

FAST = {"retry_delays_s": [0.05, 0.1], "handler_timeout_s": 0.5}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(worker=FAST)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
async def consumer(
    settings: Settings, broker: Broker, registry: Registry, store: Database
) -> AsyncIterator[None]:
    consumer = Consumer(settings, broker, registry, database=store)
    await consumer.start()
    yield
    await consumer.stop(5)


def body(event_id: str = "r-1", type_: str = "leanix.factsheet.updated") -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "test",
            "type": type_,
            "time": "2024-01-01T00:00:00Z",
            "data": {"n": 1},
        }
    )


async def publish(broker: Broker, event_id: str = "r-1") -> None:
    await broker.publish(
        body(event_id), routing_key="leanix.factsheet.updated", message_id=event_id, timeout_s=5
    )


async def test_a_retryable_failure_is_tried_again_until_it_succeeds(
    broker: Broker, registry: Registry, consumer: None, inspector: Inspector
) -> None:
    attempts: list[int] = []
    done = asyncio.Event()

    @registry.handler("leanix.#")
    async def flaky(event: CloudEvent, context: Context) -> None:
        attempts.append(context.attempt)
        if len(attempts) < 3:
            raise VendorUnavailable("uipath", "503 Service Unavailable")
        done.set()

    await publish(broker)
    async with asyncio.timeout(10):
        await done.wait()
    assert attempts == [1, 2, 3]
    await inspector.wait_count(inspector.settings.amqp.queue, 0)
    assert await inspector.count(inspector.settings.amqp.dead_letter_queue) == 0


async def test_after_the_last_delay_the_event_is_dead_lettered_with_attempts_and_error(
    broker: Broker, registry: Registry, consumer: None, inspector: Inspector
) -> None:
    calls = 0

    @registry.handler("leanix.#", name="always-down")
    async def always_down(event: CloudEvent, context: Context) -> None:
        nonlocal calls
        calls += 1
        raise RetryLater("the vendor is still down")

    await publish(broker, "r-2")
    dead = await inspector.get(inspector.settings.amqp.dead_letter_queue)
    assert calls == 3  # first try + one per delay
    assert dead.message_id == "r-2"
    assert dead.routing_key == "leanix.factsheet.updated"
    assert dead.headers["x-bridge-attempts"] == 3
    assert "the vendor is still down" in str(dead.headers["x-bridge-error"])
    assert list(dead.headers["x-bridge-failed-handlers"]) == ["always-down"]  # type: ignore[arg-type]


async def test_each_failed_handler_keeps_its_own_schedule(
    broker: Broker, registry: Registry, consumer: None, inspector: Inspector
) -> None:
    calls: dict[str, list[int]] = {"brief": [], "patient": []}
    done = asyncio.Event()

    @registry.handler("leanix.#", name="brief", retry_delays_s=[0.05])
    async def brief(event: CloudEvent, context: Context) -> None:
        calls["brief"].append(context.attempt)
        raise RetryLater("brief is down")

    @registry.handler("leanix.#", name="patient")  # the worker's schedule: two delays
    async def patient(event: CloudEvent, context: Context) -> None:
        calls["patient"].append(context.attempt)
        if context.attempt < 3:
            raise RetryLater("patient is down")
        done.set()

    await publish(broker, "r-own")
    async with asyncio.timeout(10):
        await done.wait()
    dead = await inspector.get(inspector.settings.amqp.dead_letter_queue)
    assert calls == {"brief": [1, 2], "patient": [1, 2, 3]}
    assert list(dead.headers["x-bridge-failed-handlers"]) == ["brief"]  # type: ignore[arg-type]


async def test_only_the_failed_handler_runs_again(
    broker: Broker, registry: Registry, consumer: None
) -> None:
    calls: dict[str, int] = {"steady": 0, "flaky": 0}
    done = asyncio.Event()

    @registry.handler("leanix.#", name="steady")
    async def steady(event: CloudEvent, context: Context) -> None:
        calls["steady"] += 1

    @registry.handler("leanix.#", name="flaky")
    async def flaky(event: CloudEvent, context: Context) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RetryLater("once")
        done.set()

    await publish(broker, "r-3")
    async with asyncio.timeout(10):
        await done.wait()
    assert calls == {"steady": 1, "flaky": 2}


async def test_a_handler_over_its_timeout_is_retried(
    broker: Broker, registry: Registry, consumer: None
) -> None:
    attempts: list[int] = []
    done = asyncio.Event()

    @registry.handler("leanix.#")
    async def slow_once(event: CloudEvent, context: Context) -> None:
        attempts.append(context.attempt)
        if context.attempt == 1:
            await asyncio.Event().wait()  # hangs until the worker's handler timeout
        done.set()

    await publish(broker, "r-4")
    async with asyncio.timeout(10):
        await done.wait()
    assert attempts == [1, 2]


async def test_a_permanent_failure_is_not_retried(
    broker: Broker, registry: Registry, consumer: None, inspector: Inspector
) -> None:
    calls = 0

    @registry.handler("leanix.#")
    async def broken(event: CloudEvent, context: Context) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad data")

    await publish(broker, "r-5")
    dead = await inspector.get(inspector.settings.amqp.dead_letter_queue)
    assert calls == 1
    assert dead.headers["x-bridge-attempts"] == 1


async def test_a_claim_left_by_a_dead_worker_is_waited_out_not_dead_lettered(
    settings: Settings, broker: Broker, inspector: Inspector, database: Database
) -> None:
    """A worker claimed the handler's work on this event and died: the claim lapses after
    the handler timeout (0.5 s here), longer than the handler's own schedule (0.05 s).
    Waiting for it uses no attempts, so the handler runs instead of being dead-lettered."""
    effects: list[int] = []
    registry = Registry()

    @registry.handler("#", name="effect", idempotent=True, retry_delays_s=[0.05])
    async def effect(event: CloudEvent, context: Context) -> None:
        effects.append(context.attempt)

    assert await database.handled.claim("dead-1", "effect", lease_s=0.5) == "claimed"
    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    await publish(broker, "dead-1")
    await eventually(lambda: effects, what="the handler ran once the claim lapsed")
    await consumer.stop(5)
    assert effects == [1]  # waiting did not count as an attempt
    assert await inspector.count(inspector.settings.amqp.dead_letter_queue) == 0
