"""200 clients each sending a 25 MiB body at once, half of them with a wrong credential:
the receiver's memory stays bounded, and small authenticated events are still accepted.

The receiver runs as its own process (`python -m service receiver`), so its resident
memory (VmRSS) is its own. What bounds it: a request without the credential is refused
on its headers, its body unread (service/receiver/ingest.py); one with it reserves its
body's size from `http.max_inflight_body_bytes` (64 MiB: two 25 MiB bodies) before a byte
is read, and beyond that gets 503 + Retry-After, unread (service/receiver/body.py); and
aiohttp buffers little of a body nobody reads (service/receiver/server.py).

Measured on the development machine (2 cores, uvloop): idle ~71 MB, peak ~230-250 MB,
after ~78 MB; before these bounds, 40 such clients took it to 2.7 GB and it stayed at
2.2 GB. Each body is sent until the answer comes: the full 5 GB is offered, what is
refused is never read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from service.settings import Settings
from tests import senders
from tests.hostile.receiver_wire import (
    MiB,
    ReceiverProcess,
    close,
    queue_depth,
    read_answer,
    request_head,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration

CLIENTS = 200
BODY_BYTES = 25 * MiB
PEAK_LIMIT_MB = 300.0
AFTER_MARGIN_MB = 40.0  # "near its idle level": allocator pages still mapped, not bodies
SAMPLE_S = 0.02
SMALL_AT_ONCE = 4
WRONG_AUTH = "Basic d3Jvbmc6d3Jvbmc="


@dataclass
class Flood:
    """What the clients got, and the receiver's memory meanwhile."""

    big: Counter[str] = field(default_factory=Counter)
    small: Counter[str] = field(default_factory=Counter)
    samples: list[float] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)


def big_body() -> bytes:
    """A LeanIX event of BODY_BYTES bytes (a Fact Sheet with a long description)."""
    head = b'{"type":"FactSheetUpdatedEvent","id":"big","workspaceId":"ws","factSheet":'
    head += b'{"id":"fs-1","description":"'
    return head + b"x" * (BODY_BYTES - len(head) - 3) + b'"}}'


async def send_big(port: int, auth: str, label: str, body: bytes, flood: Flood) -> None:
    """Send the whole body (stopping once answered); count the answer."""
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sending = asyncio.create_task(
        _write(writer, request_head("/webhooks/leanix", headers, len(body)), body)
    )
    try:
        answer = await read_answer(reader, timeout_s=45)
        flood.big[f"{label} {answer.status}"] += 1
        if answer.status == 503:
            flood.retry_after.add(answer.headers.get("retry-after", ""))
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        flood.big[f"{label} {type(exc).__name__}"] += 1
    finally:
        sending.cancel()
        await close(writer)


async def _write(writer: asyncio.StreamWriter, head: bytes, body: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(head)
        view = memoryview(body)
        for start in range(0, len(body), MiB):
            writer.write(view[start : start + MiB])
            await writer.drain()


async def send_small(port: int, n: int) -> int:
    body = orjson.dumps({"type": "FactSheetUpdatedEvent", "id": f"small-{n}", "workspaceId": "ws"})
    request = senders.leanix(body)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head(request.path, request.headers, len(body)) + body)
        return (await read_answer(reader)).status
    finally:
        await close(writer)


async def sample(receiver: ReceiverProcess, flood: Flood, done: asyncio.Event) -> None:
    while not done.is_set():
        flood.samples.append(receiver.rss_mb())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SAMPLE_S):
                await done.wait()


async def keep_sending_small(port: int, flood: Flood, done: asyncio.Event) -> None:
    """Small events, SMALL_AT_ONCE at a time, from the flood's start until its end."""
    n = 0
    while not done.is_set():
        batch = range(n, n + SMALL_AT_ONCE)
        for status in await asyncio.gather(*(send_small(port, i) for i in batch)):
            flood.small[str(status)] += 1
        n += SMALL_AT_ONCE


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def receiver(settings: Settings, tmp_path: Path) -> AsyncIterator[ReceiverProcess]:
    env = {
        "STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}",
        "LEANIX_WEBHOOK_AUTHORIZATION": senders.LEANIX_AUTH,
    }
    async with ReceiverProcess.run(settings, env) as receiver:
        yield receiver


async def test_a_flood_of_big_bodies_keeps_memory_bounded_and_small_events_flowing(
    receiver: ReceiverProcess, settings: Settings
) -> None:
    port, body, flood, done = receiver.port, big_body(), Flood(), asyncio.Event()
    idle = receiver.rss_mb()
    sampling = asyncio.create_task(sample(receiver, flood, done))
    small = asyncio.create_task(keep_sending_small(port, flood, done))
    credentials = [(senders.LEANIX_AUTH, "authenticated"), (WRONG_AUTH, "unauthenticated")]
    await asyncio.gather(
        *(send_big(port, *credentials[n % 2], body, flood) for n in range(CLIENTS))
    )
    done.set()
    await asyncio.gather(sampling, small)
    for n in range(3):  # the receiver at work again: its last big message is let go
        assert await send_small(port, 1000 + n) == 202
    await eventually(
        lambda: receiver.rss_mb() <= idle + AFTER_MARGIN_MB, 15, "memory back near idle"
    )
    after = receiver.rss_mb()
    peak = max(flood.samples)
    print(f"\nreceiver RSS: idle {idle:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB")
    print(f"answers: {dict(flood.big)}; small events meanwhile: {dict(flood.small)}")

    assert peak <= PEAK_LIMIT_MB, f"peak {peak:.0f} MB (idle {idle:.0f} MB)"
    assert flood.big["unauthenticated 401"] == CLIENTS // 2, flood.big
    accepted = flood.big["authenticated 202"]
    assert accepted >= 1 and accepted + flood.big["authenticated 503"] == CLIENTS // 2, flood.big
    assert flood.retry_after <= {str(settings.http.retry_after_s)}
    assert set(flood.small) == {"202"} and flood.small["202"] >= SMALL_AT_ONCE, flood.small
    assert await queue_depth(settings) == accepted + flood.small["202"] + 3
