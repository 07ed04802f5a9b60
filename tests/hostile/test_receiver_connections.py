"""Slow and many clients: half-sent headers are cut off in time, however they trickle;
connections over the cap are closed at once; an idle keep-alive connection is not cut.

The receiver is served for real (tests/hostile/receiver_wire.py: the service's own HTTP
server, with its connection guard) and attacked over raw sockets. The slow-header
attack is the one seen in the field: 1,500 connections holding half-sent headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from service.settings import Settings
from tests.hostile.receiver_wire import Served, close, closed_by_server, read_answer, serve
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 1.0
TRICKLE_S = 0.05  # the pace of a header trickled byte by byte
SLOW_CLIENTS = 1500
BATCH = 250  # connections opened at once: within the listening socket's backlog
HALF_A_HEAD = b"POST /webhooks/leanix HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def served(make_settings: Callable[..., Settings]) -> AsyncIterator[Served]:
    http = {"header_timeout_s": HEADER_TIMEOUT_S, "max_connections": 2000}
    async with serve(make_settings(http=http)) as served:
        yield served


@contextlib.asynccontextmanager
async def half_sent_heads(port: int, count: int) -> AsyncIterator[list[Connection]]:
    """`count` connections, each having sent half a request head."""
    opened: list[Connection] = []
    try:
        for start in range(0, count, BATCH):
            batch = [
                asyncio.open_connection("127.0.0.1", port) for _ in range(min(BATCH, count - start))
            ]
            opened += await asyncio.gather(*batch)
        for _, writer in opened:
            writer.write(HALF_A_HEAD)
        yield opened
    finally:
        await asyncio.gather(*(close(writer) for _, writer in opened))


async def health(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(HEALTH)
        return (await read_answer(reader)).status
    finally:
        await close(writer)


async def test_half_sent_headers_are_cut_off_after_the_header_timeout(served: Served) -> None:
    started = time.monotonic()
    async with half_sent_heads(served.port, SLOW_CLIENTS) as slow:
        outcomes = await asyncio.gather(
            *(closed_by_server(reader, HEADER_TIMEOUT_S + 10) for reader, _ in slow)
        )
        elapsed = time.monotonic() - started
    assert all(outcomes), f"{outcomes.count(False)} of {SLOW_CLIENTS} still open"
    assert elapsed < HEADER_TIMEOUT_S + 10
    assert served.connections.timed_out >= SLOW_CLIENTS
    assert await health(served.port) == 200


async def test_a_trickle_of_header_bytes_does_not_extend_the_timeout(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    started = time.monotonic()
    closed = asyncio.create_task(closed_by_server(reader, HEADER_TIMEOUT_S + 10))
    for byte in HALF_A_HEAD:  # one byte every TRICKLE_S: slower than the timeout allows
        if closed.done():
            break
        with contextlib.suppress(ConnectionError):
            writer.write(bytes([byte]))
        await asyncio.sleep(TRICKLE_S)  # the attack's own pace, not a wait for a result
    assert await closed
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 2
    await close(writer)


async def test_connections_over_the_cap_are_closed_at_once(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(http={"header_timeout_s": HEADER_TIMEOUT_S, "max_connections": 20})
    async with serve(settings) as served, half_sent_heads(served.port, 20):
        await asyncio.wait_for(_until_open(served, 20), 5)
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(HEALTH)
        assert await closed_by_server(reader, 2), "the connection over the cap was served"
        assert served.connections.refused >= 1
        await close(writer)
        # The 20 are cut off at the header timeout; then there is room again.
        await asyncio.wait_for(_until_open(served, 0), HEADER_TIMEOUT_S + 10)
        assert await health(served.port) == 200


async def _until_open(served: Served, count: int) -> None:
    while len(served.connections.open) != count:
        await poll_interval()  # polled with the caller's deadline


async def test_an_idle_keep_alive_connection_outlives_the_header_timeout(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(HEALTH)
    assert (await read_answer(reader)).status == 200
    # Nothing sent for twice the header timeout: idle, not slow. The connection stays.
    assert not await closed_by_server(reader, 2 * HEADER_TIMEOUT_S)
    writer.write(HEALTH)
    assert (await read_answer(reader)).status == 200
    await close(writer)


async def test_after_an_answer_the_next_head_has_the_header_timeout_again(
    served: Served,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    writer.write(HEALTH)
    assert (await read_answer(reader)).status == 200
    writer.write(HALF_A_HEAD)  # the second request never finishes its head
    assert await closed_by_server(reader, HEADER_TIMEOUT_S + 5)
    await close(writer)
