"""Publisher: how the Broker's confirmed publishes reach RabbitMQ (`amqp.publisher`).

    "aio-pika"  aio-pika's own Exchange.publish: public API only, works with any aiormq
    "fast"      service/bus/fastpath.py: struct-encoded frames, one socket write per loop
                turn, delivery tags kept in aiormq's private books; it took a receiver
                process from 1,250 to ~2,400 events/s. The default.

Both promise the same: `publish` returns once the broker confirmed the message, which is
then persistent in a queue. It raises TimeoutError past its timeout, aiormq's
PublishError when the broker returned the message (mandatory: no queue took it), its
DeliveryError when the broker nacked it, and another AMQP or connection error when the
channel closed; the Broker turns each into BrokerUnavailable.

"fast" is used only with an aiormq in PROVEN, the range tests/integration/test_broker.py
has proven and pyproject.toml pins (tests/unit/test_publisher.py holds the two equal).
With any other aiormq, fastpath.py is not imported: start-up logs
`broker.publisher_fallback` and publishes through aio-pika, slower but correct, so a new
aiormq never strands the service.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange

log = structlog.get_logger("service.bus")

PUBLISHERS = ("fast", "aio-pika")
PROVEN = ("7.2.4", "8")  # aiormq >= 7.2.4, < 8: as pinned in pyproject.toml
CONTENT_TYPE = "application/cloudevents+json"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One persistent message, as either publisher sends it (no timestamp property: the
    CloudEvent carries its own times)."""

    body: bytes
    routing_key: str
    message_id: str
    headers: Mapping[str, Any] | None = None
    expiration_ms: int | None = None
    content_type: str = CONTENT_TYPE


class Publisher(Protocol):
    async def publish(
        self, exchange: AbstractExchange, message: Outgoing, timeout_s: float
    ) -> None:
        """Publish `message` (mandatory) to `exchange` and wait for the broker's confirm."""


class AioPikaPublisher:
    """aio-pika's Exchange.publish on a channel opened with publisher confirms."""

    async def publish(
        self, exchange: AbstractExchange, message: Outgoing, timeout_s: float
    ) -> None:
        """Publish and wait for the confirm; TimeoutError after `timeout_s`."""
        expiration = None if message.expiration_ms is None else message.expiration_ms / 1000
        outgoing = aio_pika.Message(
            message.body,
            headers=dict(message.headers) if message.headers else None,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=expiration,  # aio-pika sends whole ms, truncated: at most 1 ms short
            message_id=message.message_id,
        )
        async with asyncio.timeout(timeout_s):
            await exchange.publish(outgoing, message.routing_key, mandatory=True)


def build(kind: str, channel: AbstractChannel) -> Publisher:
    """The publisher `kind` (one of PUBLISHERS) on `channel`; aio-pika's if "fast" is
    not proven with the installed aiormq."""
    if kind == "fast" and proven():
        from service.bus import fastpath  # imports aiormq internals: only a proven aiormq

        return fastpath.FastPublisher(channel)
    if kind == "fast":
        log.warning(
            "broker.publisher_fallback",
            aiormq=_installed("aiormq"),
            proven=f">={PROVEN[0]},<{PROVEN[1]}",
            detail='publishing through aio-pika; set amqp.publisher = "aio-pika" to say so',
        )
    return AioPikaPublisher()


def proven(installed: str | None = None) -> bool:
    """Whether the installed aiormq (or `installed`) is in the range the tests proved."""
    try:
        found = _release(installed or version("aiormq"))
    except (PackageNotFoundError, ValueError):
        return False
    return _release(PROVEN[0]) <= found < _release(PROVEN[1])


def _release(text: str) -> tuple[int, ...]:
    """(7, 2, 4) of "7.2.4"; a pre-release counts as its release ("8.0.0rc1" -> (8, 0, 0))."""
    match = re.match(r"\d+(\.\d+)*", text)
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(number) for number in match.group().split("."))


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
