"""The JSON log writer: lines of one loop turn in one write, in order, none lost."""

from __future__ import annotations

import asyncio

import orjson

from service.logs import LineWriter


async def next_turn() -> None:
    """Return once the loop has run the callbacks scheduled before this call (FIFO): the
    writer's flush among them."""
    loop = asyncio.get_running_loop()
    turned = loop.create_future()
    loop.call_soon(turned.set_result, None)
    await turned


class Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.flushes = 0

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def flush(self) -> None:
        self.flushes += 1

    def lines(self) -> list[int]:
        return [orjson.loads(line)["n"] for w in self.writes for line in w.splitlines()]


async def test_the_lines_of_one_loop_turn_go_out_in_one_write() -> None:
    sink = Sink()
    writer = LineWriter(sink.write, sink.flush)
    for n in range(5):
        writer.info(orjson.dumps({"n": n}))
    assert sink.writes == []  # not yet: at the end of this turn
    await next_turn()
    writer.info(orjson.dumps({"n": 5}))
    await next_turn()
    assert len(sink.writes) == 2
    assert sink.lines() == [0, 1, 2, 3, 4, 5]
    assert all(w.endswith(b"\n") for w in sink.writes)


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    sink = Sink()
    writer = LineWriter(sink.write, sink.flush)
    writer.error(orjson.dumps({"n": 1}))
    assert sink.lines() == [1] and sink.flushes == 1


async def test_flush_writes_what_is_pending_now() -> None:
    """What atexit calls: nothing waits for a loop turn that will not come."""
    sink = Sink()
    writer = LineWriter(sink.write, sink.flush)
    writer.warning(orjson.dumps({"n": 7}))
    writer.flush()
    assert sink.lines() == [7]
    await next_turn()
    assert sink.lines() == [7]  # the scheduled flush finds nothing more
