"""Bodies a sender should not be able to make us hold: refused on the headers before a
byte is read, over the body budget, stalled, cut off mid-way, or carrying an event type
no routing key can hold.

The receiver is served for real (tests/hostile/receiver_wire.py) with a real RabbitMQ;
each attack is written on a raw socket, so it can stop anywhere in a request. Each test
asserts the answer, that nothing was published, and where it matters the log.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable

import orjson
import pytest

from service.receiver.app import BUDGET
from service.receiver.server import LINGER_S
from service.settings import Settings
from service.vendors import normalise
from tests import senders
from tests.hostile.receiver_wire import (
    MiB,
    Served,
    close,
    closed_by_server,
    queue_depth,
    read_answer,
    request_head,
    serve,
)
from tests.loglines import parse
from tests.waiting import eventually

pytestmark = pytest.mark.integration

BIG = 25 * MiB  # announced, never sent: the answer must come without it
NBSP = "\xa0"


def _headers(request: senders.Request, **changed: str) -> dict[str, str]:
    return {**request.headers, **changed}


# Each: (source path, headers announcing a BIG body) -> the status it must get unread.
REFUSED_ON_HEADERS: dict[str, tuple[Callable[[], tuple[str, dict[str, str]]], int]] = {
    "leanix-wrong-authorization": (
        lambda: ("/webhooks/leanix", _headers(senders.leanix(), Authorization="Basic Z3Vlc3M=")),
        401,
    ),
    "leanix-nbsp-before-the-value": (
        lambda: (
            "/webhooks/leanix",
            _headers(senders.leanix(), Authorization=NBSP + senders.LEANIX_AUTH),
        ),
        401,
    ),
    "leanix-nbsp-alone": (
        lambda: ("/webhooks/leanix", _headers(senders.leanix(), Authorization=NBSP)),
        401,
    ),
    "uipath-signature-not-base64-sha256": (
        lambda: ("/callbacks/uipath", _headers(senders.uipath(), **{"X-UiPath-Signature": "x"})),
        401,
    ),
    "robocorp-signature-not-hex-sha256": (
        lambda: (
            "/callbacks/robocorp",
            _headers(senders.robocorp(), **{"x-rc-signature": "z" * 64}),
        ),
        401,
    ),
    "leapwork-stale-timestamp": (
        lambda: ("/callbacks/leapwork", senders.leapwork(timestamp=1_600_000_000).headers),
        401,
    ),
    "workato-wrong-token": (
        lambda: (
            "/callbacks/workato",
            senders.bearer_callback("/callbacks/workato", b"{}", token="guess").headers,
        ),
        401,
    ),
    "leanix-not-json": (
        lambda: ("/webhooks/leanix", _headers(senders.leanix(), **{"Content-Type": "text/plain"})),
        415,
    ),
    "leanix-compressed": (
        lambda: ("/webhooks/leanix", _headers(senders.leanix(), **{"Content-Encoding": "gzip"})),
        415,
    ),
}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.mark.parametrize(("make", "status"), REFUSED_ON_HEADERS.values(), ids=REFUSED_ON_HEADERS)
async def test_a_request_refused_on_its_headers_is_answered_without_its_body(
    settings: Settings, make: Callable[[], tuple[str, dict[str, str]]], status: int
) -> None:
    path, headers = make()
    async with serve(settings) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(request_head(path, headers, BIG))  # and not one byte of the body
        answer = await read_answer(reader, timeout_s=5)
        assert answer.status == status, answer.body
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers.get("connection", "").lower() == "close"
        assert await closed_by_server(reader, LINGER_S + 5), "the connection was kept open"
        await close(writer)
        assert await queue_depth(settings) == 0


async def test_a_body_over_the_limit_is_refused_on_its_length(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(http={"max_body_bytes": MiB, "max_inflight_body_bytes": MiB})
    async with serve(settings) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(request_head("/webhooks/leanix", senders.leanix().headers, MiB + 1))
        assert (await read_answer(reader, timeout_s=5)).status == 413
        assert await closed_by_server(reader, LINGER_S + 5)
        await close(writer)


async def test_over_the_body_budget_a_request_gets_503_unread(
    make_settings: Callable[..., Settings],
) -> None:
    """One body in flight holds the whole budget: the next request is refused before its
    body is read, and accepted once the first is done."""
    settings = make_settings(http={"max_body_bytes": MiB, "max_inflight_body_bytes": MiB})
    first = senders.leanix(_leanix_event("first", size=MiB))
    second = senders.leanix(_leanix_event("second"))
    async with serve(settings) as served:
        r1, w1 = await asyncio.open_connection("127.0.0.1", served.port)
        w1.write(request_head(first.path, first.headers, len(first.body)) + first.body[:1000])
        await eventually(lambda: _in_use(served) == len(first.body), 10, "the budget taken")

        r2, w2 = await asyncio.open_connection("127.0.0.1", served.port)
        w2.write(request_head(second.path, second.headers, len(second.body)))
        busy = await read_answer(r2, timeout_s=5)
        assert busy.status == 503 and busy.headers["retry-after"] == "5", busy.body
        assert busy.headers["content-type"] == "application/problem+json"
        assert await closed_by_server(r2, LINGER_S + 5)

        w1.write(first.body[1000:])
        assert (await read_answer(r1)).status == 202
        r3, w3 = await asyncio.open_connection("127.0.0.1", served.port)
        w3.write(request_head(second.path, second.headers, len(second.body)) + second.body)
        assert (await read_answer(r3)).status == 202
        for writer in (w1, w2, w3):
            await close(writer)
        assert await queue_depth(settings) == 2
        assert _in_use(served) == 0


def _in_use(served: Served) -> int:
    return served.app[BUDGET].in_use


async def test_expect_100_continue_is_answered_only_when_the_body_is_wanted(
    settings: Settings,
) -> None:
    request = senders.leanix()
    async with serve(settings) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        wrong = _headers(request, Authorization="Basic Z3Vlc3M=", Expect="100-continue")
        writer.write(request_head(request.path, wrong, BIG))
        first_line = await asyncio.wait_for(reader.readline(), 5)
        assert first_line.split()[1] == b"401", first_line  # no "100 Continue" first
        await close(writer)

        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        right = _headers(request, Expect="100-continue")
        writer.write(request_head(request.path, right, len(request.body)))
        assert (await asyncio.wait_for(reader.readline(), 5)).split()[1] == b"100"
        await reader.readline()  # the blank line after "100 Continue"
        writer.write(request.body)
        assert (await read_answer(reader)).status == 202
        await close(writer)


async def test_a_body_that_stalls_gets_408(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(http={"body_timeout_s": 0.5})
    request = senders.leanix()
    async with serve(settings) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(request_head(request.path, request.headers, len(request.body)))
        writer.write(request.body[:10])  # and then nothing
        answer = await read_answer(reader, timeout_s=5)
        assert answer.status == 408, answer.body
        assert "0.5 s" in answer.json()["detail"]
        await close(writer)
        assert await queue_depth(settings) == 0


async def test_a_client_that_hangs_up_mid_body_is_logged_as_an_abort(
    settings: Settings, log_lines: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    request = senders.leanix(_leanix_event("cut-off", size=64 * 1024))
    async with serve(settings) as served:
        _, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(request_head(request.path, request.headers, len(request.body)))
        writer.write(request.body[: len(request.body) // 2])
        await writer.drain()
        await close(writer)  # half the body sent, then gone
        await eventually(
            lambda: [x for x in parse(log_lines) if x["event"] == "request"], 10, "logged"
        )
        assert await queue_depth(settings) == 0

    lines = parse(log_lines)
    (aborted,) = [line for line in lines if line["event"] == "request.aborted"]
    (outcome,) = [line for line in lines if line["event"] == "request"]
    assert aborted["level"] == "info" and "exception" not in aborted
    assert outcome["status"] == 499 and outcome["source"] == "leanix"
    assert not [line for line in lines if line["level"] in ("error", "critical")], lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


# A type too long for a routing key, in each place a sender names its event's type.
LONG = "E" * (20 * 1000 * 1000)
LONG_TYPES = {
    "leanix": lambda n: senders.leanix(orjson.dumps({"type": f"{n}{LONG}Event", "id": n})),
    "uipath": lambda n: senders.uipath(orjson.dumps({"Type": f"job.{n}{LONG}", "EventId": n})),
    "robocorp": lambda n: senders.robocorp(orjson.dumps({"event": f"{n}{LONG}", "id": n})),
}


@pytest.mark.parametrize("make", LONG_TYPES.values(), ids=LONG_TYPES)
async def test_an_event_type_longer_than_a_routing_key_is_refused_and_nothing_kept(
    settings: Settings, make: Callable[[str], senders.Request]
) -> None:
    """Three distinct 20 MB types: each refused, none of them in a cache afterwards."""
    before = normalise.cached_names()
    async with serve(settings) as served:
        for n in ("a", "b", "c"):
            request = make(n)
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(request_head(request.path, request.headers, len(request.body)))
            writer.write(request.body)
            answer = await read_answer(reader, timeout_s=20)
            assert answer.status == 400, answer.body
            assert "longer than 255 bytes" in answer.json()["detail"]
            await close(writer)
        assert await queue_depth(settings) == 0
    assert normalise.cached_names() == before


def _leanix_event(event_id: str, size: int = 0) -> bytes:
    """A LeanIX event, padded to `size` bytes if that is more than it takes."""
    doc = orjson.dumps({"type": "FactSheetUpdatedEvent", "id": event_id, "workspaceId": "ws"})
    pad = size - len(doc) - len(b',"pad":""')
    return doc if pad < 0 else doc[:-1] + b',"pad":"' + b"x" * pad + b'"}'
