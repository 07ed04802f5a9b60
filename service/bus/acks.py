"""Acks: the acks of one turn of the event loop, written in one go per channel.

Under load a worker settles many messages per turn. aiormq sends each `basic.ack` as a
frame of its own: an object, a queue hop, a socket write and a drain. Here the acks of one
turn are encoded with `struct` (service/bus/frames.py), joined per channel and handed to
aiormq's writer as one frame. An ack resolves once its frame is in the connection's write
queue, as the broker never answers an ack anyway: an ack lost with the connection means
the message comes again, which redelivery handling already covers.

An ack is refused (ChannelInvalidStateError, as aiormq's basic_ack does) when its channel
has closed or is closing: its deliveries come again, an ack after the broker closed the
channel would close the whole connection, and the number may already belong to a new
channel, whose tags must not be acked by mistake. The check is made when the frame is
queued; a full write queue is waited on only until the channel closes. Like the publish
pipeline, this leans on aiormq internals (pinned in pyproject.toml).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiormq
from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import ChannelFrame
from aiormq.exceptions import ChannelInvalidStateError

from service.bus import frames


class Acks:
    """Queues acks and writes those of one turn in one frame per channel."""

    def __init__(self) -> None:
        self._queued: defaultdict[aiormq.Channel, list[tuple[int, asyncio.Future[None]]]]
        self._queued = defaultdict(list)
        self._writer: asyncio.Task[None] | None = None

    def ack(self, message: AbstractIncomingMessage) -> asyncio.Future[None]:
        """Queue the ack of `message`; the future resolves when it is handed to the writer."""
        if message.delivery_tag is None:
            raise ValueError("a message consumed with no_ack has nothing to ack")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued[message.channel].append((message.delivery_tag, done))  # type: ignore[index]
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name="acks")
        return done

    async def _write_all(self) -> None:
        try:
            while self._queued:
                queued, self._queued = self._queued, defaultdict(list)
                for channel, acks in queued.items():
                    await _write(channel, acks)
        except asyncio.CancelledError:  # the loop is shutting down: nothing will be written
            for acks in self._queued.values():
                _fail(acks, ChannelInvalidStateError("the ack was cancelled"))
            self._queued.clear()
            raise
        finally:
            self._writer = None


async def _write(channel: aiormq.Channel, acks: list[tuple[int, asyncio.Future[None]]]) -> None:
    """Hand one frame with these acks to the connection's writer, unless the channel closed."""
    waiting = [(tag, done) for tag, done in acks if not done.done()]
    if not waiting:
        return
    try:
        if _closing(channel):
            raise ChannelInvalidStateError(f"{channel!r} closed")
        payload = b"".join(frames.ack(channel.number, tag) for tag, _ in waiting)
        await _put(channel, ChannelFrame(payload, should_close=False))
    except asyncio.CancelledError:
        _fail(waiting, ChannelInvalidStateError("the ack was cancelled"))
        raise
    except Exception as exc:
        _fail(waiting, exc)
        return
    for _, done in waiting:
        if not done.done():  # its waiter may have been cancelled meanwhile
            done.set_result(None)


async def _put(channel: aiormq.Channel, frame: ChannelFrame) -> None:
    """Queue `frame` for the writer; when the queue is full, wait for room or for the
    channel to close, whichever comes first (a dead connection's queue never drains)."""
    try:
        channel.write_queue.put_nowait(frame)
        return
    except asyncio.QueueFull:
        pass
    put = asyncio.ensure_future(channel.write_queue.put(frame))
    closed = channel._closing  # aiormq's future of the channel's end (Base.is_closed)
    try:
        await asyncio.wait({put, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not put.done():
            put.cancel()
    if not put.done() or put.cancelled():
        raise ChannelInvalidStateError(f"{channel!r} closed before its acks were written")


def _closing(channel: aiormq.Channel) -> bool:
    """Closed, or closing: the check aiormq's own basic_ack makes. Once the broker closed
    the channel, aiormq has queued Close-Ok, and an ack after it closes the connection."""
    close_event = getattr(channel, "_Channel__close_event", None)
    return channel.is_closed or (close_event is not None and close_event.is_set())


def _fail(acks: list[tuple[int, asyncio.Future[None]]], exc: Exception) -> None:
    for _, done in acks:
        if not done.done():
            done.set_exception(exc)
