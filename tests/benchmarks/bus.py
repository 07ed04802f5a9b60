"""The broker side of a benchmark: which names a run declared, deleting them, and checking.

Every benchmark deletes its exchanges and queues when it ends, successful or not, and
then checks with passive declares that none of them is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import aio_pika
import aiormq

from service.bus import topology
from service.bus.settings import AmqpSettings
from service.bus.topology import retry_queue
from service.settings import WorkerSettings
from tests.benchmarks.config import AMQP_URL

CLEANUP_TIMEOUT_S = 30.0
RETRY_S = 0.5
RETRY_DELAYS_S = WorkerSettings().retry_delays_s  # the worker's retry queues, by default


@dataclass(frozen=True)
class Names:
    amqp: AmqpSettings
    queues: tuple[str, ...]
    exchanges: tuple[str, ...]


def names(prefix: str) -> Names:
    """Everything the service or the baseline may declare under `prefix`."""
    amqp = AmqpSettings(exchange=f"{prefix}.events", queue=f"{prefix}.worker")
    retries = tuple(retry_queue(amqp, d) for d in RETRY_DELAYS_S)
    return Names(
        amqp=amqp,
        queues=(amqp.queue, amqp.dead_letter_queue, *retries),
        exchanges=(amqp.exchange, amqp.dead_letter_exchange),
    )


async def delete(prefix: str, within_s: float = CLEANUP_TIMEOUT_S) -> list[str]:
    """Delete every name of `prefix`; return the names still there afterwards.

    A broker that is restarting is retried until `within_s` has passed; after that every
    name counts as left over (the caller reports them) rather than raising.
    """
    declared = names(prefix)
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await _delete(declared)
        except (OSError, aiormq.exceptions.AMQPError):
            if time.monotonic() > deadline:
                return [*declared.queues, *declared.exchanges]
            await asyncio.sleep(RETRY_S)  # polling a restarting broker, within a deadline


async def _delete(declared: Names) -> list[str]:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await topology.delete(await connection.channel(), declared.amqp, RETRY_DELAYS_S)
        everything = (*declared.queues, *declared.exchanges)
        return [name for name in everything if await _exists(connection, name, declared)]


async def _exists(connection: aio_pika.abc.AbstractConnection, name: str, declared: Names) -> bool:
    """A passive declare on a channel of its own: NOT_FOUND closes that channel."""
    channel = await connection.channel()
    try:
        if name in declared.queues:
            await channel.declare_queue(name, passive=True)
        else:
            await channel.get_exchange(name, ensure=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    with contextlib.suppress(Exception):
        await channel.close()
    return True


async def broker_version() -> str | None:
    """The RabbitMQ version the broker announces; None when it cannot be reached."""
    try:
        connection = await aio_pika.connect(AMQP_URL)
    except (OSError, aiormq.exceptions.AMQPError):
        return None
    async with connection:
        transport = connection.transport
        properties = transport.connection.server_properties if transport else {}
        version = properties.get("version")
        if isinstance(version, bytes):
            return version.decode()
        return None if version is None else str(version)
