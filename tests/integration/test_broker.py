"""Broker: confirmed publishing with each publisher (amqp.publisher), against a real RabbitMQ.

Every test taking `broker` runs with aio-pika's own publish and with the fast path, which
keeps its delivery tags in aiormq's books: with the aiormq installed, these tests are the
contract that proves it (fastpath.PROVEN). They hold both to what a publish promises:
confirmed means in the queue, with its properties; unroutable (returned), nacked and
closed are refused; a flood of concurrent publishes (large, with headers, interleaved
with aiormq's own publishes on the same channel) all arrive, each once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import aiormq
import orjson
import pytest
import structlog
from aio_pika.abc import AbstractIncomingMessage

from service.bus import fastpath
from service.bus.broker import Broker
from service.bus.fastpath import Pipeline
from service.errors import BrokerUnavailable
from service.settings import Settings
from tests.integration.conftest import Inspector
from tests.waiting import eventually


async def test_a_confirmed_publish_is_in_the_work_queue_with_its_properties(
    broker: Broker, settings: Settings, inspector: Inspector
) -> None:
    await broker.publish(b'{"a":1}', routing_key="x.y", message_id="m-1", timeout_s=5)
    message = await inspector.get(settings.amqp.queue)
    assert message.body == b'{"a":1}'
    assert message.message_id == "m-1"
    assert message.routing_key == "x.y"
    assert message.delivery_mode == 2
    assert message.content_type == "application/cloudevents+json"


async def test_headers_and_expiration_travel(
    broker: Broker, settings: Settings, inspector: Inspector
) -> None:
    headers = {"x-bridge-attempt": 2, "x-bridge-handlers": "a,b"}
    await broker.publish(
        b"{}", routing_key="r", message_id="m-2", timeout_s=5, headers=headers, expiration_s=60
    )
    message = await inspector.get(settings.amqp.queue)
    assert message.headers is not None
    assert {k: message.headers[k] for k in headers} == headers  # quorum adds x-delivery-count
    assert message.expiration == 60


async def test_an_unroutable_publish_is_refused(broker: Broker) -> None:
    with pytest.raises(BrokerUnavailable, match="could not route"):
        await broker.publish(
            b"{}", exchange="", routing_key="no-such-queue-anywhere", message_id="m", timeout_s=5
        )


async def test_a_nacked_publish_is_refused(broker: Broker, inspector: Inspector) -> None:
    """A queue that is full and rejects publishes makes the broker nack them."""
    full = f"{broker.settings.queue}.full"
    channel = await inspector.connection.channel()
    arguments = {"x-max-length": 0, "x-overflow": "reject-publish"}
    await channel.declare_queue(full, durable=True, arguments=arguments)
    try:
        with pytest.raises(BrokerUnavailable, match="refused or lost"):
            await broker.publish(b"{}", exchange="", routing_key=full, message_id="m", timeout_s=5)
        await broker.publish(b"{}", routing_key="r", message_id="after", timeout_s=5)
    finally:
        await channel.queue_delete(full)


async def test_a_publish_on_a_closed_channel_is_refused_at_once(broker: Broker) -> None:
    assert broker._channel is not None
    channel = await broker._channel.get_underlay_channel()
    await channel.close()
    with pytest.raises(BrokerUnavailable):
        await broker.publish(b"{}", routing_key="r", message_id="m", timeout_s=5)


@pytest.mark.parametrize("publisher", ["fast"])
async def test_the_pipeline_keeps_no_frames_once_written_or_refused(
    broker: Broker, settings: Settings
) -> None:
    """A publish's frames (up to 25 MiB) are not kept by the pipeline once written, nor by
    the refusal its caller holds: that carries a traceback whose frames hold the batch.
    Counted by references (CPython). What aiormq's writer keeps (the last joined write,
    until the next) is not ours: two publishes in one turn make that a join of both."""
    assert broker._channel is not None
    channel = await broker._channel.get_underlay_channel()
    pipeline = Pipeline(channel)  # type: ignore[arg-type]  # it is a Channel

    def encoded(message_id: str) -> bytes:  # a new object, referenced only by the caller
        props = fastpath.properties("application/json", message_id)
        return fastpath.publish(
            channel.number, settings.amqp.exchange, "r", b"{}", props,
            mandatory=True, max_body_frame=pipeline.max_body_frame,
        )  # fmt: skip

    first, second = encoded("m-1"), encoded("m-2")
    written = sys.getrefcount(first), sys.getrefcount(second)
    await asyncio.gather(pipeline.send(first, "m-1"), pipeline.send(second, "m-2"))
    assert (sys.getrefcount(first), sys.getrefcount(second)) == written

    await channel.close()
    refused = encoded("m-3")
    unsent = sys.getrefcount(refused)
    confirmation = pipeline.send(refused, "m-3")
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await confirmation
    assert confirmation.exception() is not None  # the refusal, and its traceback, kept alive
    assert sys.getrefcount(refused) == unsent


async def test_a_queue_declared_otherwise_is_retried_until_it_is_fixed(
    make_settings: Callable[..., Settings], inspector: Inspector, publisher: str
) -> None:
    """A declare that fails after the connection opened (PRECONDITION_FAILED here; a broker
    restarting mid-way is the same path) is retried with the connection, not given up."""
    settings = make_settings(amqp={"connect_retry_s": 0.05, "publisher": publisher})
    channel = await inspector.connection.channel()
    await channel.declare_queue(settings.amqp.queue, durable=True)  # classic, not quorum
    broker = Broker(settings.amqp)
    with structlog.testing.capture_logs() as logs:
        await broker.start()
        await eventually(
            lambda: sum(e["event"] == "broker.setup_failed" for e in logs) >= 2,
            what="the failed declare was tried again",
        )
        assert not broker.ready
        await channel.queue_delete(settings.amqp.queue)
        await broker.wait_ready(10)
    try:
        await broker.publish(b"{}", routing_key="r", message_id="after-fix", timeout_s=5)
        assert (await inspector.get(settings.amqp.queue)).message_id == "after-fix"
        assert "PRECONDITION_FAILED" in next(
            e["error"] for e in logs if e["event"] == "broker.setup_failed"
        )
    finally:
        await broker.close()


async def test_a_flood_arrives_whole_and_once(
    broker: Broker, settings: Settings, inspector: Inspector
) -> None:
    """1,000 concurrent publishes, some over a frame (128 KiB), some with headers, and
    aiormq's own basic_publish on the same channel in between: every one is confirmed,
    and the queue holds each exactly once."""
    assert broker._channel is not None
    channel = await broker._channel.get_underlay_channel()

    async def ours(n: int) -> None:
        body = orjson.dumps({"n": n, "pad": "x" * (200_000 if n % 97 == 0 else n)})
        headers = {"x-bridge-attempt": n} if n % 5 == 0 else None
        await broker.publish(
            body, routing_key="f", message_id=f"o-{n}", timeout_s=30, headers=headers
        )

    async def theirs(n: int) -> None:
        props = aiormq.spec.Basic.Properties(delivery_mode=2, message_id=f"t-{n}")
        body = orjson.dumps({"n": n, "pad": ""})
        confirm = await channel.basic_publish(
            body, exchange=settings.amqp.exchange, routing_key="f", properties=props
        )
        assert isinstance(confirm, aiormq.spec.Basic.Ack)

    await asyncio.gather(*(ours(n) if n % 10 else theirs(n) for n in range(1000)))
    await inspector.wait_count(settings.amqp.queue, 1000, timeout_s=30)
    seen = await drain(inspector, settings.amqp.queue, 1000)
    assert sorted(seen) == list(range(1000))


async def drain(inspector: Inspector, queue: str, count: int) -> list[int]:
    """Consume `count` messages; check each body against its message id; return the ns."""
    seen: list[int] = []
    done = asyncio.Event()
    channel = await inspector.connection.channel()
    declared = await channel.declare_queue(queue, passive=True)

    async def take(message: AbstractIncomingMessage) -> None:
        await message.ack()
        n = orjson.loads(message.body)["n"]
        assert n == int(str(message.message_id).split("-")[1])
        seen.append(n)
        if len(seen) == count:
            done.set()

    await declared.consume(take)
    async with asyncio.timeout(30):
        await done.wait()
    await channel.close()
    return seen
