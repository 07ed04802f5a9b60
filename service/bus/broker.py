"""Broker: the process's one RabbitMQ connection, its confirmed publishing, and readiness.

Start-up never blocks on the broker: `start()` connects in the background and keeps
trying, and `ready` is false until the connection is up and the topology declared.
A publish is persistent, mandatory and awaits the broker's confirm within a timeout;
anything short of a confirm raises BrokerUnavailable, so the caller answers 503 and the
sender retries. It never waits on a dead connection (aio-pika#636): a publish while
disconnected fails at once. How a publish is sent is the publisher's (publisher.py:
aio-pika's own, or the fast path, as `amqp.publisher` says).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from service import metrics
from service.bus import wire
from service.bus.cluster import ClusterConnection
from service.bus.publisher import Outgoing, Publisher, build
from service.bus.settings import AmqpSettings, redact_url
from service.bus.topology import Topology, declare
from service.errors import BrokerUnavailable

log = structlog.get_logger("service.bus")

_PUBLISH_ERRORS = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.AMQPError,
    ConnectionError,
    RuntimeError,
)


class Broker:
    """Owns the connection, the confirmed publishing channel and the declared topology."""

    def __init__(self, amqp: AmqpSettings) -> None:
        self.settings = amqp
        self.connection: AbstractRobustConnection | None = None
        self.topology: Topology | None = None
        self._channel: AbstractChannel | None = None
        self._publisher: Publisher | None = None
        self._starting: asyncio.Task[None] | None = None
        self.declared = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Connected, with the topology declared: a publish can be confirmed."""
        return (
            self.topology is not None
            and self.connection is not None
            and self.connection.connected.is_set()
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._starting is None:
            self._starting = asyncio.create_task(self._connect(), name="broker-connect")
            self._starting.add_done_callback(_report_crash)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until the topology is declared; TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s):
            await self.declared.wait()

    async def _connect(self) -> None:
        """Connect, open the publishing channel and declare the topology, retrying the
        whole until it succeeds: a broker that restarts mid-way, or a queue declared with
        other arguments (fix it, and this succeeds on its next try), is retried, logged."""
        while True:
            try:
                await self._open()
                break
            except (OSError, aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException) as exc:
                event = "broker.unreachable" if isinstance(exc, OSError) else "broker.setup_failed"
                log.warning(event, url=self.settings.safe_url, error=str(exc) or type(exc).__name__)
                await asyncio.sleep(self.settings.connect_retry_s)
        self.declared.set()
        log.info("broker.ready", url=self.settings.safe_url, exchange=self.settings.exchange)

    async def _open(self) -> None:
        wire.install()  # before any delivery: no message may stop the connection's reader
        connection = await connect(self.settings.urls, self.settings.connect_retry_s)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            topology = await declare(channel, self.settings)
        except BaseException:
            await asyncio.shield(connection.close())  # closed even if we are being cancelled
            raise
        self._publisher = build(self.settings.publisher, channel)
        self.connection, self._channel, self.topology = connection, channel, topology

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        timeout_s: float,
        headers: Mapping[str, Any] | None = None,
        exchange: str | None = None,
        expiration_s: float | None = None,
    ) -> None:
        """Publish a persistent message and wait for the broker's confirm.

        `exchange` defaults to the events exchange; "" is the default exchange (direct
        to a queue named by the routing key).
        """
        if not self.ready or self._publisher is None:
            raise BrokerUnavailable("not connected to the message broker")
        target = self._exchange(exchange)
        expiration_ms = max(1, round(expiration_s * 1000)) if expiration_s is not None else None
        message = Outgoing(body, routing_key, message_id, headers, expiration_ms)
        started = time.perf_counter()
        try:
            await self._publisher.publish(target, message, timeout_s)
        except TimeoutError:
            raise BrokerUnavailable(f"the broker did not confirm within {timeout_s:g} s") from None
        except aiormq.exceptions.PublishError:
            raise BrokerUnavailable("the broker could not route the message to a queue") from None
        except _PUBLISH_ERRORS as exc:
            raise BrokerUnavailable(f"the broker refused or lost the message: {exc}") from exc
        metrics.publish_seconds.observe(time.perf_counter() - started)

    def _exchange(self, name: str | None) -> AbstractExchange:
        assert self.topology is not None and self._channel is not None
        if name is None or name == self.topology.exchange.name:
            return self.topology.exchange
        if name == self.topology.dead_letter_exchange.name:
            return self.topology.dead_letter_exchange
        if name == "":
            return self._channel.default_exchange
        raise ValueError(f"unknown exchange {name!r}")

    async def close(self) -> None:
        """Stop connecting and close the connection."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        if self.connection is not None:
            await self.connection.close()


async def connect(urls: Sequence[str], retry_s: float) -> AbstractRobustConnection:
    """A robust connection to the first node of `urls` that answers, moving on to the next
    node whenever it is lost (cluster.py); the last node's error if none answers."""
    for start in range(len(urls)):
        try:
            return await _connect_one([*urls[start:], *urls[:start]], retry_s)
        except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
            if start == len(urls) - 1:
                raise
            log.warning("broker.node_unreachable", node=redact_url(urls[start]), error=str(exc))
    raise ValueError("no broker URL to connect to")


async def _connect_one(urls: Sequence[str], retry_s: float) -> AbstractRobustConnection:
    """A robust connection to `urls[0]`, closed again if connecting fails or is cancelled.

    `aio_pika.connect_robust` builds the connection and awaits its first connect; when that
    await is cancelled (a start-up that fails elsewhere), the connection it built is
    unreachable and its reconnect task outlives the cancel, holding the event loop open
    for ever. Built here, it is ours to close.
    """
    connection = ClusterConnection(urls, reconnect_interval=retry_s)
    try:
        await connection.connect()
    except BaseException:
        await asyncio.shield(connection.close())  # closed even if we are being cancelled
        raise
    return connection


def _report_crash(task: asyncio.Task[None]) -> None:
    """Log what ended the connecting task, if not success or a stop: readiness stays 503."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("broker.connect_crashed", error=repr(exc), exc_info=exc)
