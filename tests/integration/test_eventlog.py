"""Every event a worker takes lands in the event log, with each handling attempt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

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


# The attributes a replay from the log must keep: all of them. `receivedat` and
# `authsource` are the receiver's extensions; the others a sender's. The subject is longer
# than its column (the log cuts it there): the rebuilt event has it whole.
ORIGINAL = {
    "specversion": "1.0", "id": "log-4", "source": "leanix:ws-prod",
    "type": "leanix.factsheet.updated", "subject": "fs-" + "9" * 250,
    "time": "2024-01-01T00:00:00Z", "datacontenttype": "application/json",
    "receivedat": "2024-01-01T00:00:01.250Z", "authsource": "leanix/bearer",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "workspace": "ws-prod", "data": {"factSheet": {"id": "fs-9", "name": "Payroll"}},
}  # fmt: skip


async def test_a_replay_from_the_log_rebuilds_the_cloudevent_attribute_for_attribute(
    settings: Settings, broker: Broker, inspector: Inspector, database: Database
) -> None:
    """A handled event (no longer in any queue) replayed from the log is the original in
    every CloudEvent attribute and in its data; only the message headers change (our
    bookkeeping goes, `x-bridge-replayed-at` comes)."""
    registry = Registry()

    @registry.handler("leanix.#", name="steady")
    async def steady(event: CloudEvent, context: Context) -> None:
        pass

    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    await broker.publish(orjson.dumps(ORIGINAL), routing_key=ORIGINAL["type"],  # type: ignore[arg-type]
                         message_id="log-4", timeout_s=5)  # fmt: skip
    await wait_status(database, "log-4", "handled")
    await consumer.stop(5)
    found = await database.events.get("log-4")
    assert found is not None and found[0].subject != ORIGINAL["subject"]  # cut in its column

    assert await replay.replay(broker, database, [found[0]], "ops") == (["log-4"], [])
    message = await inspector.get(settings.amqp.queue)
    assert orjson.loads(message.body) == ORIGINAL
    assert message.message_id == "log-4" and message.routing_key == ORIGINAL["type"]
    assert message.headers is not None and "x-bridge-replayed-at" in message.headers


async def test_latency_runs_from_the_receivers_accept_to_the_worker_handling_it(
    settings: Settings, broker: Broker, inspector: Inspector, database: Database
) -> None:
    """The receiver stamps `receivedat` when it accepts an event: an event accepted 30 s
    before a worker handles it (it waited in the queue) counts 30 s, not the worker's
    few milliseconds."""
    registry = Registry()

    @registry.handler("leanix.#", name="quick")
    async def quick(event: CloudEvent, context: Context) -> None:
        pass

    accepted = time.time() - 30
    stamp = datetime.fromtimestamp(accepted, UTC).isoformat(timespec="milliseconds")
    body = {**ORIGINAL, "id": "log-5", "receivedat": stamp.replace("+00:00", "Z")}
    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    await broker.publish(orjson.dumps(body), routing_key=ORIGINAL["type"],  # type: ignore[arg-type]
                         message_id="log-5", timeout_s=5)  # fmt: skip
    await wait_status(database, "log-5", "handled")
    await consumer.stop(5)
    found = await database.events.get("log-5")
    assert found is not None
    head = found[0]
    assert head.accepted_at == pytest.approx(accepted, abs=0.001)
    assert head.updated_at - head.received_at < 10  # what the worker alone saw
    latency = await database.events.latency(since=accepted - 1)
    assert latency.count == 1 and latency.p50_s is not None
    assert 30 <= latency.p50_s < 40 and latency.p99_s == latency.p50_s
