"""The worker's settle path with claims and the event log: busy claims, the handler's kit,
and a copy that cannot be made, against the real RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.errors import BrokerUnavailable, RejectEvent, RetryLater
from service.settings import Settings
from service.store import Database
from service.worker.claims import Claims
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry, idempotency_key
from tests.integration.conftest import Inspector
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(worker={"retry_delays_s": [0.05, 0.1], "claim_lease_s": 0.5})


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
async def consumer(
    settings: Settings, broker: Broker, registry: Registry, database: Database
) -> AsyncIterator[Consumer]:
    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    yield consumer
    await consumer.stop(5)


async def publish(broker: Broker, event_id: str) -> None:
    body = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "test", "type": "leanix.factsheet.updated",
         "time": "2024-01-01T00:00:00Z", "data": {}}
    )  # fmt: skip
    await broker.publish(
        body, routing_key="leanix.factsheet.updated", message_id=event_id, timeout_s=5
    )


async def logged(database: Database, event_id: str, status: str) -> Any:
    found = await database.events.get(event_id)
    return found if found is not None and found[0].status == status else None


async def test_a_claim_held_by_a_live_worker_is_waited_for_without_using_attempts(
    settings: Settings, broker: Broker, registry: Registry, database: Database, consumer: Consumer
) -> None:
    ran: list[int] = []

    @registry.handler("#", name="once", idempotent=True)
    async def once(event: CloudEvent, context: Context) -> None:
        ran.append(context.attempt)

    # The other worker's lease is long enough that a loaded machine's slow store does not
    # let it lapse between renewals (its heartbeat renews every third of it): the consumer,
    # with its own 0.5 s lease, must find it alive and keep retrying, not take it over.
    elsewhere = Claims(database.handled, 6.0, 300)
    held = await elsewhere.acquire("busy-1", "once")  # renewed by its heartbeat meanwhile
    assert held is not None
    await publish(broker, "busy-1")
    found = await eventually(lambda: logged(database, "busy-1", "retrying"), 15, "busy")
    assert found[1][0].error.startswith("another delivery")
    assert await elsewhere.mark(held)  # the other worker finished it
    head, tries = await eventually(lambda: logged(database, "busy-1", "handled"), 15, "skipped")
    assert ran == []  # never twice: the copy found it done
    assert head.attempts == 1  # waiting used no attempt
    assert tries[-1].outcome == "skipped"


async def test_a_handler_gets_a_stable_key_and_a_transaction_that_marks_it_done(
    broker: Broker, registry: Registry, database: Database, consumer: Consumer
) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE effects (k VARCHAR(40), attempt INTEGER)"))
    keys: list[str] = []

    @registry.handler("#", name="kit", idempotent=True)
    async def kit(event: CloudEvent, context: Context) -> None:
        keys.append(context.idempotency_key)
        async with context.transaction() as connection:
            insert = sa.text("INSERT INTO effects VALUES (:k, :a)")
            await connection.execute(insert, {"k": context.idempotency_key, "a": context.attempt})
            if context.attempt == 1:
                raise RetryLater("rolled back, and tried again")

    @registry.handler("#", name="plain")
    async def plain(event: CloudEvent, context: Context) -> None:
        keys.append(context.idempotency_key)
        with pytest.raises(RuntimeError, match="idempotent=True"):
            context.transaction()

    await publish(broker, "kit-1")
    await eventually(lambda: logged(database, "kit-1", "handled"), 15, "handled")
    expected = idempotency_key("kit-1", "kit")
    assert keys == [expected, idempotency_key("kit-1", "plain"), expected]  # the same on retry
    async with database.engine.connect() as connection:
        rows = list(await connection.execute(sa.text("SELECT k, attempt FROM effects")))
    assert [tuple(r) for r in rows] == [(expected, 2)]  # the first attempt's write undone
    assert await database.handled.is_handled("kit-1", "kit")


class NoCopies:
    """The consumer's broker, unable to publish copies (the broker went away mid-settle)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def __getattr__(self, name: str) -> Any:
        return getattr(self.broker, name)

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        raise BrokerUnavailable("the broker did not confirm the copy")


async def test_a_copy_that_cannot_be_made_is_logged_then_rejected_to_the_dead_letters(
    settings: Settings,
    broker: Broker,
    registry: Registry,
    database: Database,
    consumer: Consumer,
    inspector: Inspector,
) -> None:
    @registry.handler("#", name="broken")
    async def broken(event: CloudEvent, context: Context) -> None:
        raise RejectEvent("bad data")

    consumer.broker = NoCopies(broker)  # type: ignore[assignment]
    await publish(broker, "copy-1")
    dead = await inspector.get(settings.amqp.dead_letter_queue)
    assert dead.headers["x-death"][0]["reason"] == "rejected"  # type: ignore[index]
    _, tries = await eventually(lambda: logged(database, "copy-1", "dead_lettered"), 5, "log")
    assert [(t.handler, t.outcome) for t in tries] == [("broken", "dead_letter")]
