"""Acks: the acks of one turn of the event loop, written in one go per channel.

Under load a worker settles many messages per turn. aiormq sends each `basic.ack` as a
frame of its own: an object, a queue hop, a socket write and a drain. Here the acks of one
turn are encoded with `struct` (service/bus/frames.py), joined per channel and handed to
aiormq's writer as one frame. An ack resolves once its frame is in the connection's write
queue, as the broker never answers an ack anyway: an ack lost with the connection means
the message comes again, which redelivery handling already covers.

An ack is refused (ChannelInvalidStateError, as aiormq's basic_ack does) when its channel
has closed: its deliveries come again, and its number may already belong to a new channel,
whose tags must not be acked by mistake. The check is made when the frame is queued.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiormq
from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import ChannelFrame

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
        finally:
            self._writer = None


async def _write(channel: aiormq.Channel, acks: list[tuple[int, asyncio.Future[None]]]) -> None:
    waiting = [(tag, done) for tag, done in acks if not done.done()]
    try:
        if channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
        payload = b"".join(frames.ack(channel.number, tag) for tag, _ in waiting)
        await channel.write_queue.put(ChannelFrame(payload, should_close=False))
    except asyncio.CancelledError:
        _fail(waiting, aiormq.exceptions.ChannelInvalidStateError("the ack was cancelled"))
        raise
    except Exception as exc:
        _fail(waiting, exc)
        return
    for _, done in waiting:
        done.set_result(None)


def _fail(waiting: list[tuple[int, asyncio.Future[None]]], exc: Exception) -> None:
    for _, done in waiting:
        if not done.done():
            done.set_exception(exc)
