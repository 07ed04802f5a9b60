"""Acks: the acks of one loop turn written together, against a real RabbitMQ.

What an ack promises: the broker forgets the message. The proof uses the broker's flow
control: with a prefetch of P, it delivers message n + P only once it has settled one of
the earlier ones, so when COUNT + P messages have all been delivered, the first COUNT
have all been settled. (Closing the channel and counting what comes back is no proof on
a quorum queue: acks sent just before a close can still be in flight inside the broker.)
Acks of ours mix with aio-pika's own acks and rejects on the same channel; an ack on a
closed channel is refused and its message comes again.
"""

from __future__ import annotations

import asyncio

import aiormq
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from service.bus.acks import Acks
from service.bus.broker import Broker
from service.settings import Settings
from tests.integration.conftest import Inspector
from tests.waiting import poll_interval

COUNT = 300
PREFETCH = 16


async def publish(broker: Broker, count: int) -> None:
    await asyncio.gather(
        *(broker.publish(b"{}", routing_key="a", message_id=f"m-{n}", timeout_s=10)
          for n in range(count))
    )  # fmt: skip


async def take_one(channel: AbstractChannel, queue_name: str) -> AbstractIncomingMessage:
    """One message from the queue, not acked, polling within a deadline."""
    queue = await channel.declare_queue(queue_name, passive=True)
    async with asyncio.timeout(10):
        while (message := await queue.get(fail=False)) is None:
            await poll_interval()
    return message


async def test_every_message_acked_in_batches_is_settled_by_the_broker(
    broker: Broker, settings: Settings, inspector: Inspector
) -> None:
    await publish(broker, COUNT + PREFETCH)
    await inspector.wait_count(settings.amqp.queue, COUNT + PREFETCH)
    acks, delivered, done = Acks(), list[tuple[int, bool]](), asyncio.Event()
    channel = await inspector.connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.declare_queue(settings.amqp.queue, passive=True)

    async def settle(message: AbstractIncomingMessage) -> None:
        n = int(str(message.message_id).split("-")[1])
        delivered.append((n, message.redelivered or False))
        if len(delivered) == COUNT + PREFETCH:
            done.set()
        if n >= COUNT:
            return  # the tail: delivered only once the first COUNT are settled
        if n % 10 == 0:
            await message.ack()  # aio-pika's own, in between ours
        elif n % 7 == 0:
            await message.reject(requeue=False)
        else:
            await acks.ack(message)

    await queue.consume(settle)
    async with asyncio.timeout(30):
        await done.wait()

    assert sorted(n for n, _ in delivered) == list(range(COUNT + PREFETCH))
    assert not any(again for _, again in delivered)


async def test_an_ack_on_a_closed_channel_is_refused_and_the_message_comes_again(
    broker: Broker, settings: Settings, inspector: Inspector
) -> None:
    await publish(broker, 1)
    channel = await inspector.connection.channel()
    message = await take_one(channel, settings.amqp.queue)
    await channel.close()

    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await Acks().ack(message)
    await inspector.wait_count(settings.amqp.queue, 1)  # back in the queue, not acked


async def test_an_ack_on_a_channel_the_broker_is_closing_is_refused_and_the_connection_lives(
    broker: Broker, settings: Settings, inspector: Inspector
) -> None:
    await publish(broker, 1)
    channel = await inspector.connection.channel()
    message = await take_one(channel, settings.amqp.queue)
    underlay = await channel.get_underlay_channel()
    await underlay.basic_ack(10**9, wait=True)  # an unknown tag: the broker closes the channel
    close_event = underlay._Channel__close_event  # type: ignore[attr-defined]
    async with asyncio.timeout(10):
        await close_event.wait()  # the reader saw Channel.Close; the channel is not closed yet

    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await Acks().ack(message)
    other = await inspector.connection.channel()  # the connection itself is still open
    assert (await other.declare_queue(settings.amqp.queue, passive=True)).name
    await inspector.wait_count(settings.amqp.queue, 1)
