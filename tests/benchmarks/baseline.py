"""The naive baseline receiver: one handler, one confirmed persistent publish per request.

What a first attempt would write, and what ours must beat: no authentication, no
normalising, no logging, no timeout. Like ours it publishes to a durable topic exchange
bound to a quorum queue and answers 202 only after the broker's confirm.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

import aio_pika
from aio_pika.abc import AbstractExchange
from aiohttp import web

from service.bus.settings import AmqpSettings

EXCHANGE = web.AppKey("exchange", AbstractExchange)
ROUTING_KEY = "leanix.factsheet.created"


async def create_app(amqp: AmqpSettings, stack: AsyncExitStack) -> web.Application:
    """The baseline app, with its connection, confirmed channel, exchange and queue."""
    connection = await aio_pika.connect_robust(amqp.url)
    stack.push_async_callback(connection.close)
    channel = await connection.channel(publisher_confirms=True)
    topic = aio_pika.ExchangeType.TOPIC
    exchange = await channel.declare_exchange(amqp.exchange, topic, durable=True)
    queue = await channel.declare_queue(
        amqp.queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(exchange, "#")
    app = web.Application()
    app[EXCHANGE] = exchange
    app.router.add_post("/webhooks/leanix", accept)
    return app


async def accept(request: web.Request) -> web.Response:
    """Publish the body as it came, wait for the confirm, answer 202."""
    body = await request.read()
    event_id = str(uuid.uuid4())
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id,
    )
    await request.app[EXCHANGE].publish(message, routing_key=ROUTING_KEY)
    return web.json_response({"id": event_id, "status": "accepted"}, status=202)
