"""Tail: print the CloudEvents on the bus as they pass, one JSON line each.

Binds a private, auto-deleted queue to the exchange, so it takes nothing away from the
worker. For looking, not for processing.
"""

from __future__ import annotations

import asyncio
import sys

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from service.bus import wire
from service.bus.broker import connect
from service.bus.settings import AmqpSettings
from service.terminal import visible, visible_json


async def tail(amqp: AmqpSettings, pattern: str = "#", stop: asyncio.Event | None = None) -> None:
    """Print every event whose routing key matches `pattern` until `stop` is set."""
    stop = stop or asyncio.Event()
    wire.install()  # a message pamqp cannot decode must not stop the tail
    connection = await connect(amqp.urls, amqp.connect_retry_s)  # closed if Ctrl-C comes first
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            amqp.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, pattern)
        await queue.consume(_print, no_ack=True)
        print(f"# tailing {amqp.exchange!r} for {pattern!r} (Ctrl-C to stop)", file=sys.stderr)
        await stop.wait()


async def _print(message: AbstractIncomingMessage) -> None:
    sys.stdout.write(line(message.body) + "\n")
    sys.stdout.flush()


def line(body: bytes) -> str:
    """One line for a message body: JSON on one line, anything else with its control
    characters escaped (service/terminal.py), so that no event can drive the terminal."""
    try:
        return visible_json(orjson.dumps(orjson.loads(body)).decode())
    except orjson.JSONDecodeError:
        return visible(body.decode("utf-8", errors="replace"))
