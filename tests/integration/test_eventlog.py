"""Every event a worker takes lands in the event log, with each handling attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from service.admin import replay
from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.errors import RejectEvent, RetryLater
from service.settings import Settings
from service.store import Database
from service.store.eventlog import EventQuery
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests.integration.conftest import Inspector
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(worker={"retry_delays_s": [0.05]}, eventlog={"max_data_bytes": 1000})


async def publish(broker: Broker, event_id: str, type_: str, data: object) -> None:
    body = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "test", "type": type_,
         "subject": "fs-9", "time": "2024-01-01T00:00:00Z", "data": data}
    )  # fmt: skip
    await broker.publish(body, routing_key=type_, message_id=event_id, timeout_s=5)


async def test_events_and_attempts_are_logged(
    settings: Settings, broker: Broker, inspector: Inspector, database: Database
) -> None:
    registry = Registry()
    calls = 0

    @registry.handler("leanix.#", name="flaky")
    async def flaky(event: CloudEvent, context: Context) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryLater("not yet")

    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    await publish(broker, "log-1", "leanix.factsheet.updated", {"small": True})
    await publish(broker, "log-2", "workato.job.completed", {"big": "x" * 5000})
    await inspector.wait_count(settings.amqp.queue, 0)
    async with asyncio.timeout(10):
        while (found := await database.events.get("log-1")) is None or (
            found[0].status != "handled"
        ):
            await poll_interval()
    await consumer.stop(5)

    head, tries = found
    assert (head.type, head.subject, head.attempts, head.data) == (
        "leanix.factsheet.updated",
        "fs-9",
        2,
        {"small": True},
    )
    assert [(t.handler, t.attempt, t.outcome) for t in tries] == [
        ("flaky", 1, "retry"),
        ("flaky", 2, "ok"),
    ]
    assert tries[0].error == "RetryLater: not yet"
    unhandled = await database.events.get("log-2")
    assert unhandled is not None
    assert unhandled[0].status == "unhandled"
    assert unhandled[0].data is None  # over eventlog.max_data_bytes
    page, _ = await database.events.search(EventQuery(status="unhandled"))
    assert [e.id for e in page] == ["log-2"]


async def test_a_replayed_event_is_handled_again_and_its_history_shows_who(
    settings: Settings, broker: Broker, inspector: Inspector, database: Database
) -> None:
    """Dead-lettered, taken off the dead-letter queue, replayed from the event log alone:
    the worker handles the rebuilt CloudEvent and the log shows the replay, then the
    delivery's own outcome."""
    registry = Registry()
    seen: list[CloudEvent] = []

    @registry.handler("leanix.#", name="picky")
    async def picky(event: CloudEvent, context: Context) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RejectEvent("not this time")

    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    await publish(broker, "log-3", "leanix.factsheet.updated", {"small": True})
    await wait_status(database, "log-3", "dead_lettered")
    await inspector.get(settings.amqp.dead_letter_queue)  # gone from the queue
    found = await database.events.get("log-3")
    assert found is not None
    done, refused = await replay.replay(broker, database, [found[0]], "ops")
    assert (done, refused) == (["log-3"], [])
    await wait_status(database, "log-3", "handled")
    await consumer.stop(5)

    again = seen[-1]
    assert (again.id, again.type, again.subject, again.data) == (
        "log-3", "leanix.factsheet.updated", "fs-9", {"small": True},
    )  # fmt: skip
    found = await database.events.get("log-3")
    assert found is not None
    assert [(t.handler, t.outcome) for t in found[1]] == [
        ("picky", "dead_letter"), ("replayed by ops", "replayed"), ("picky", "ok"),
    ]  # fmt: skip


async def wait_status(database: Database, event_id: str, status: str) -> None:
    async with asyncio.timeout(10):
        while (found := await database.events.get(event_id)) is None or (found[0].status != status):
            await poll_interval()
