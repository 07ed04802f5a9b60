"""Pipeline: confirmed publishes on one channel, written in one go per turn of the loop.

Requests that publish in the same turn of the event loop share one socket write (and the
broker reads them in one go); each still waits for its own confirm. In confirm mode the
broker numbers a channel's publishes 1, 2, 3... in the order they arrive, so the numbers
(delivery tags) are taken at the write, in wire order, under the channel's lock, in
aiormq's own books (`delivery_tag`, `confirmations`, `message_id_delivery_tag`): its
reader settles our confirms and mandatory returns exactly as it settles its own, and its
own `basic_publish` (which takes the same lock) can interleave safely.

Once handed over, a publish's frames are let go (a refusal's traceback would keep them);
the one holder left is aiormq's writer, whose loop variable keeps the last joined write
alive until it takes the next frame: a publish, an ack, a heartbeat (aiormq 7.2,
Connection.__writer).

This leans on aiormq's Channel internals; pyproject.toml pins aiormq to the versions
tests/integration/test_broker.py has proven (confirm, return, closed channel, flood).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiormq
from aiormq.abc import ChannelFrame


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
