"""Acks' writer against a stand-in channel: it never stalls on a channel that went away."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiormq.exceptions import ChannelInvalidStateError

from service.bus import frames
from service.bus.acks import Acks


class WatchedQueue(asyncio.Queue[Any]):
    """A write queue that tells when a writer started waiting in put()."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.waiting = asyncio.Event()

    async def put(self, item: Any) -> None:
        self.waiting.set()
        await super().put(item)


@dataclass(eq=False)
class FakeChannel:
    """What Acks uses of an aiormq channel: number, write_queue, is_closed, _closing."""

    number: int = 1
    write_queue: WatchedQueue = field(default_factory=lambda: WatchedQueue(maxsize=1))
    _closing: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def is_closed(self) -> bool:
        return self._closing.done()


@dataclass
class FakeMessage:
    channel: FakeChannel
    delivery_tag: int


async def test_acks_of_one_turn_are_one_frame_per_channel() -> None:
    acks, one, two = Acks(), FakeChannel(1), FakeChannel(2)
    done = [acks.ack(FakeMessage(one, 5)), acks.ack(FakeMessage(two, 7)),  # type: ignore[arg-type]
            acks.ack(FakeMessage(one, 6))]  # type: ignore[arg-type]  # fmt: skip
    await asyncio.gather(*done)
    assert one.write_queue.get_nowait().payload == frames.ack(1, 5) + frames.ack(1, 6)
    assert two.write_queue.get_nowait().payload == frames.ack(2, 7)


async def test_a_full_queue_of_a_channel_that_closes_fails_its_acks_and_frees_the_writer() -> None:
    acks, stuck, fresh = Acks(), FakeChannel(1), FakeChannel(2)
    stuck.write_queue.put_nowait("a frame its dead writer will never take")
    lost = acks.ack(FakeMessage(stuck, 1))  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        await stuck.write_queue.waiting.wait()  # the writer waits for room in the full queue
    stuck._closing.set_result(None)  # the connection died

    with pytest.raises(ChannelInvalidStateError):
        await lost
    await acks.ack(FakeMessage(fresh, 9))  # type: ignore[arg-type]  # the next channel's ack goes out
    assert fresh.write_queue.get_nowait().payload == frames.ack(2, 9)


async def test_an_ack_whose_waiter_was_cancelled_does_not_stop_the_others() -> None:
    acks, channel = Acks(), FakeChannel(1)
    gone = acks.ack(FakeMessage(channel, 1))  # type: ignore[arg-type]
    kept = acks.ack(FakeMessage(channel, 2))  # type: ignore[arg-type]
    gone.cancel()  # its handler was cancelled: that message is not acked
    await kept
    assert channel.write_queue.get_nowait().payload == frames.ack(1, 2)


async def test_an_ack_on_a_closed_channel_is_refused() -> None:
    acks, channel = Acks(), FakeChannel(1)
    channel._closing.set_result(None)
    with pytest.raises(ChannelInvalidStateError):
        await acks.ack(FakeMessage(channel, 1))  # type: ignore[arg-type]
    assert channel.write_queue.empty()
