"""Fast path: confirmed publishes encoded with `struct` and written in one go per loop turn.

The one module that touches aiormq's internals; service/bus/publisher.py is its only user
(`amqp.publisher = "fast"`). It earned one receiver process 1,250 -> ~2,400 events/s:

- Encoding. pamqp builds, validates and marshals an object per frame, and aiormq one more
  per publish; the receiver publishes one shape of message thousands of times a second,
  so it is encoded here with `struct`, the method frame cached per exchange and routing
  key. A publish is three frames or more (AMQP 0-9-1 §2.3.5): the `basic.publish` method,
  the content header with the properties, and the body in chunks of at most frame_max - 8
  bytes. tests/unit/test_frames.py holds these bytes equal to pamqp's for the same message.
- Batching. Publishes of the same turn of the event loop share one socket write (and the
  broker reads them in one go); each still waits for its own confirm. In confirm mode the
  broker numbers a channel's publishes 1, 2, 3... in the order they arrive, so the numbers
  (delivery tags) are taken at the write, in wire order, under the channel's lock, in
  aiormq's own books (`delivery_tag`, `confirmations`, `message_id_delivery_tag`): its
  reader settles our confirms, nacks and mandatory returns exactly as it settles its own,
  and its own `basic_publish` (which takes the same lock) can interleave safely.

Once handed over, a publish's frames are let go (a refusal's traceback would keep them);
the one holder left is aiormq's writer, whose loop variable keeps the last joined write
alive until it takes the next frame: a publish, an ack, a heartbeat (aiormq 7.2,
Connection.__writer).

publisher.PROVEN is the aiormq range the broker tests (tests/integration/test_broker.py,
run with both publishers) have proven; outside it this module is not even imported, and
the service publishes through aio-pika.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange
from aiormq.abc import ChannelFrame
from pamqp import encode

from service.bus.publisher import Outgoing

FRAME_END = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_BASIC, _PUBLISH = 60, 40
# Property flags of class basic, most significant bit first (§4.2.6.1): only those we send.
_CONTENT_TYPE = 1 << 15
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_EXPIRATION = 1 << 8
_MESSAGE_ID = 1 << 7
_FRAME_HEAD = struct.Struct(">BHI")
_CONTENT_HEAD = struct.Struct(">HHQH")


class FastPublisher:
    """Publishes through a Pipeline on the current aiormq channel of a robust channel."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._pipeline: Pipeline | None = None

    async def publish(
        self, exchange: AbstractExchange, message: Outgoing, timeout_s: float
    ) -> None:
        """Publish and wait for the confirm; TimeoutError after `timeout_s`."""
        pipeline = await self._current()
        expiration = None if message.expiration_ms is None else str(message.expiration_ms)
        props = properties(
            message.content_type, message.message_id, headers=message.headers, expiration=expiration
        )
        encoded = publish(
            pipeline.channel.number, exchange.name, message.routing_key, message.body, props,
            mandatory=True, max_body_frame=pipeline.max_body_frame,
        )  # fmt: skip
        await _within(pipeline.send(encoded, message.message_id), timeout_s)

    async def _current(self) -> Pipeline:
        """The pipeline of the current channel (a reconnect brings a new channel)."""
        channel = await self._channel.get_underlay_channel()
        if self._pipeline is None or self._pipeline.channel is not channel:
            self._pipeline = Pipeline(channel)  # type: ignore[arg-type]  # it is a Channel
        return self._pipeline


async def _within(confirmation: asyncio.Future[Any], timeout_s: float) -> Any:
    """Await a confirm, failing it with TimeoutError after `timeout_s` (one timer, no task)."""
    timer = asyncio.get_running_loop().call_later(timeout_s, _expire, confirmation)
    try:
        return await confirmation
    finally:
        timer.cancel()


def _expire(confirmation: asyncio.Future[Any]) -> None:
    if not confirmation.done():
        confirmation.set_exception(TimeoutError())


# Encoding -----------------------------------------------------------------------------


def shortstr(text: str) -> bytes:
    """An AMQP short string: a length octet, then at most 255 bytes of UTF-8."""
    raw = text.encode()
    if len(raw) > 255:
        raise ValueError(f"an AMQP short string holds 255 bytes, not {len(raw)}")
    return bytes((len(raw),)) + raw


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return b"".join((_FRAME_HEAD.pack(kind, channel, len(payload)), payload, FRAME_END))


@lru_cache(maxsize=4096)
def method(channel: int, exchange: str, routing_key: str, mandatory: bool) -> bytes:
    """The `basic.publish` method frame (cached: a service publishes to few keys)."""
    arguments = b"".join((
        struct.pack(">HHH", _BASIC, _PUBLISH, 0),  # class, method, reserved-1
        shortstr(exchange),
        shortstr(routing_key),
        b"\x01" if mandatory else b"\x00",  # bits: mandatory, immediate (never)
    ))  # fmt: skip
    return frame(_METHOD, channel, arguments)


def properties(
    content_type: str,
    message_id: str,
    *,
    persistent: bool = True,
    headers: Mapping[str, Any] | None = None,
    expiration: str | None = None,
) -> tuple[int, bytes]:
    """The property flags and the property list, in the order of their flags."""
    flags = _CONTENT_TYPE | _DELIVERY_MODE | _MESSAGE_ID
    parts = [shortstr(content_type)]
    if headers:
        flags |= _HEADERS
        parts.append(encode.field_table(dict(headers)))
    parts.append(b"\x02" if persistent else b"\x01")
    if expiration is not None:
        flags |= _EXPIRATION
        parts.append(shortstr(expiration))
    parts.append(shortstr(message_id))
    return flags, b"".join(parts)


def publish(
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    props: tuple[int, bytes],
    *,
    mandatory: bool,
    max_body_frame: int,
) -> bytes:
    """Every frame of one publish, as the bytes to write to the socket."""
    flags, property_list = props
    header = _CONTENT_HEAD.pack(_BASIC, 0, len(body), flags) + property_list
    parts = [method(channel, exchange, routing_key, mandatory), frame(_HEADER, channel, header)]
    for start in range(0, len(body), max_body_frame):
        parts.append(frame(_BODY, channel, body[start : start + max_body_frame]))
    return b"".join(parts)


# Batching -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Publish:
    frames: bytes
    message_id: str
    confirmation: asyncio.Future[Any]


class Pipeline:
    """Batches the encoded publishes of one aiormq channel."""

    def __init__(self, channel: aiormq.Channel) -> None:
        self.channel = channel
        self.max_body_frame: int = channel.max_content_size
        self._queued: list[_Publish] = []
        self._writer: asyncio.Task[None] | None = None

    def send(self, frames: bytes, message_id: str) -> asyncio.Future[Any]:
        """Queue one publish; the future gets the broker's confirm (or its refusal)."""
        confirmation = asyncio.get_running_loop().create_future()
        self._queued.append(_Publish(frames, message_id, confirmation))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name="publish-pipeline")
        return confirmation

    async def _write_all(self) -> None:
        """Write what is queued, batch after batch, until nothing is left."""
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                await self._write([p for p in batch if not p.confirmation.done()])
        finally:
            self._writer = None

    async def _write(self, batch: list[_Publish]) -> None:
        try:
            await self._hand_over(batch)
        finally:
            # A refusal's traceback holds this frame, and so the batch, for as long as its
            # caller keeps the error: the frames (up to 25 MiB each) are not needed past here.
            for publish in batch:
                publish.frames = b""

    async def _hand_over(self, batch: list[_Publish]) -> None:
        if not batch:
            return
        channel, registered = self.channel, 0
        try:
            async with channel.lock:  # raises ChannelInvalidStateError once it is closed
                for publish in batch:
                    _register(channel, publish)
                    registered += 1
                frame = ChannelFrame(b"".join(p.frames for p in batch), should_close=False)
                await channel.write_queue.put(frame)
        except BaseException as exc:
            _unregister(channel, batch[:registered])
            for publish in batch:
                if not publish.confirmation.done():
                    publish.confirmation.set_exception(_as_error(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise


def _register(channel: aiormq.Channel, publish: _Publish) -> None:
    """Take the next delivery tag for `publish`, where aiormq's reader will look for it."""
    channel.delivery_tag += 1
    tag = channel.delivery_tag
    channel.confirmations[tag] = publish.confirmation
    channel.message_id_delivery_tag[publish.message_id] = tag
    publish.confirmation.add_done_callback(partial(_forget, channel, publish.message_id, tag))


def _unregister(channel: aiormq.Channel, registered: list[_Publish]) -> None:
    """Give back the tags of publishes the broker never saw (the write did not happen)."""
    for publish in reversed(registered):
        tag = channel.delivery_tag
        channel.delivery_tag -= 1
        channel.confirmations.pop(tag, None)
        if channel.message_id_delivery_tag.get(publish.message_id) == tag:
            channel.message_id_delivery_tag.pop(publish.message_id)


def _forget(channel: aiormq.Channel, message_id: str, tag: int, _: asyncio.Future[Any]) -> None:
    if channel.message_id_delivery_tag.get(message_id) == tag:
        channel.message_id_delivery_tag.pop(message_id)


def _as_error(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncio.CancelledError):
        return aiormq.exceptions.ChannelInvalidStateError("the publish was cancelled")
    return exc
