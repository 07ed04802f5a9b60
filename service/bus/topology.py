"""Topology: what the bus looks like, declared idempotently by every process.

    events (topic, durable) --#--> bridge.worker (quorum|classic, durable)
                                        | dead-lettered (handler failed, or delivery limit)
    events.dead (topic, durable) --#--> bridge.worker.dead

    bridge.worker.retry.<ms>ms (one per retry delay; message TTL, then dead-lettered
    through the default exchange back to bridge.worker)

The receiver declares it too, so an accepted event is always routed to a durable queue:
a publish is only confirmed once the work queue holds the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from pamqp.common import FieldTable

from service.bus.settings import AmqpSettings


@dataclass(frozen=True)
class Topology:
    exchange: AbstractExchange
    dead_letter_exchange: AbstractExchange
    work_queue: AbstractQueue
    dead_letter_queue: AbstractQueue


def _queue_arguments(amqp: AmqpSettings) -> FieldTable:
    arguments: FieldTable = {"x-queue-type": amqp.queue_type}
    if amqp.queue_type == "quorum":
        arguments["x-delivery-limit"] = amqp.delivery_limit
    return arguments


async def declare(channel: AbstractChannel, amqp: AmqpSettings) -> Topology:
    """Declare the exchanges and queues (idempotent) and return handles to them."""
    topic = aio_pika.ExchangeType.TOPIC
    exchange = await channel.declare_exchange(amqp.exchange, topic, durable=True)
    dead = await channel.declare_exchange(amqp.dead_letter_exchange, topic, durable=True)
    dead_queue = await channel.declare_queue(
        amqp.dead_letter_queue, durable=True, arguments={"x-queue-type": amqp.queue_type}
    )
    await dead_queue.bind(dead, "#")
    work_arguments: FieldTable = {**_queue_arguments(amqp), "x-dead-letter-exchange": dead.name}
    work = await channel.declare_queue(amqp.queue, durable=True, arguments=work_arguments)
    await work.bind(exchange, "#")
    return Topology(exchange, dead, work, dead_queue)


def retry_queue(amqp: AmqpSettings, delay_s: float) -> str:
    """The name of the queue that holds events `delay_s` before their next attempt."""
    return f"{amqp.queue}.retry.{round(delay_s * 1000)}ms"


async def declare_retry_queues(
    channel: AbstractChannel, amqp: AmqpSettings, delays_s: Iterable[float]
) -> None:
    """One queue per delay; its TTL dead-letters each message back to the work queue."""
    for delay in sorted(set(delays_s)):
        arguments: FieldTable = {
            **_queue_arguments(amqp),
            "x-message-ttl": round(delay * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": amqp.queue,
        }
        if amqp.queue_type == "quorum":
            # Quorum queues dead-letter at most once unless told otherwise.
            arguments.pop("x-delivery-limit", None)
            arguments.update(
                {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
            )
        await channel.declare_queue(retry_queue(amqp, delay), durable=True, arguments=arguments)


async def delete(channel: AbstractChannel, amqp: AmqpSettings, delays_s: Iterable[float]) -> None:
    """Delete the exchanges and queues `declare` made (tests and the demo clean up with it)."""
    retries = [retry_queue(amqp, delay) for delay in delays_s]
    for queue in (amqp.queue, amqp.dead_letter_queue, *retries):
        await channel.queue_delete(queue)
    for exchange in (amqp.exchange, amqp.dead_letter_exchange):
        await channel.exchange_delete(exchange)
