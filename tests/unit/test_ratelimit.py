"""The shared rate limiter's own logic, on an in-memory bucket and a hand-moved clock:
due times, batches, lapsed tokens, 429 holds, and pacing alone while the store is out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from service.clients import ratelimit
from service.clients.leanix import rate_limit_key
from service.clients.ratelimit import RateLimiter, SharedRateLimiter, due_times
from service.resources import leanix_pace
from service.settings import LeanixApi

RATE = 10.0


class Clock:
    def __init__(self, now: float = 5000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryBuckets:
    """The store's bucket arithmetic in memory; `gate` holds a take, `error` fails it."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[float, float]] = {}
        self.calls: list[tuple[str, int]] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()  # a take has reached the store
        self.error: BaseException | None = None

    async def take(
        self, name: str, count: int, rate_per_s: float, burst: float, now: float
    ) -> tuple[float, float]:
        self.calls.append(("take", count))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        tokens, stamp = self.state.get(name, (burst, now))
        level = min(burst, tokens + max(0.0, now - stamp) * rate_per_s)
        self.state[name] = (level - count, max(now, stamp))
        return self.state[name]

    async def hold(self, name: str, rate_per_s: float, now: float, until: float) -> None:
        self.calls.append(("hold", 0))
        if self.error is not None:
            raise self.error
        tokens, stamp = self.state.get(name, (0.0, now))
        level = tokens + max(0.0, now - stamp) * rate_per_s
        self.state[name] = (min(0.0, level), max(stamp, until))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def limiter(clock: Clock, slept: list[float]) -> tuple[SharedRateLimiter, MemoryBuckets]:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    buckets = MemoryBuckets()
    return SharedRateLimiter(buckets, "b", RATE, clock=clock, sleep=sleep), buckets


Made = tuple[SharedRateLimiter, MemoryBuckets]


def test_due_times_space_owed_tokens_one_interval_apart() -> None:
    # 3 were in the bucket, 5 taken: 3 now, then one per 1/rate.
    assert due_times(-2.0, 100.0, 5, RATE) == pytest.approx([100, 100, 100, 100.1, 100.2])
    assert due_times(0.5, 100.0, 1, RATE) == [100.0]


async def test_queued_callers_take_their_tokens_in_one_round_trip(
    limiter: Made, slept: list[float]
) -> None:
    shared, buckets = limiter
    buckets.gate = asyncio.Event()
    callers = [asyncio.create_task(shared.acquire()) for _ in range(4)]
    await buckets.entered.wait()  # the first caller is in the store; the others queue behind it
    buckets.gate.set()
    await asyncio.gather(*callers)
    assert buckets.calls == [("take", 1), ("take", 3)]
    assert slept == pytest.approx([0.1, 0.2, 0.3])


async def test_a_token_left_unused_lapses_instead_of_adding_to_a_later_burst(
    limiter: Made, clock: Clock
) -> None:
    shared, buckets = limiter
    buckets.gate = asyncio.Event()
    first = asyncio.create_task(shared.acquire())
    second, third = (asyncio.create_task(shared.acquire()) for _ in range(2))
    await buckets.entered.wait()
    buckets.gate.set()
    await first
    third.cancel()  # it gave up while the second took tokens for both
    await asyncio.gather(second, third, return_exceptions=True)
    assert buckets.calls == [("take", 1), ("take", 2)]

    clock.now += ratelimit.HOLD_S + 1
    await shared.acquire()  # the cancelled caller's token has lapsed: a new one is taken
    assert buckets.calls[-1] == ("take", 1)


async def test_a_hold_delays_every_later_token(
    limiter: Made, clock: Clock, slept: list[float]
) -> None:
    shared, buckets = limiter
    await shared.acquire()
    await shared.hold(3.0)
    await shared.acquire()
    assert slept == pytest.approx([3.1])
    assert ("hold", 0) in buckets.calls


async def test_an_unreachable_store_paces_this_process_alone_then_shares_again(
    limiter: Made, clock: Clock, slept: list[float]
) -> None:
    shared, buckets = limiter
    buckets.error = ConnectionError("the store is unreachable (OperationalError)")
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            await shared.acquire()  # alone: 10 a second from a burst of 1
        await shared.hold(1.0)  # not sent to the store either while it is out
        assert buckets.calls == [("take", 1)]  # asked once, then left alone for a while
        assert slept == pytest.approx([0.1, 0.2])
        buckets.error = None
        clock.now += ratelimit.STORE_RETRY_S
        await shared.acquire()
    assert buckets.calls[-1] == ("take", 1)
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("ratelimit.store_unreachable", "warning"),
        ("ratelimit.shared_again", "info"),
    ]
    assert "OperationalError" in logs[0]["error"]


async def test_a_store_too_slow_counts_as_unreachable(
    limiter: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, buckets = limiter
    monkeypatch.setattr(ratelimit, "STORE_TIMEOUT_S", 0.01)
    buckets.gate = asyncio.Event()  # never set: the store does not answer
    with structlog.testing.capture_logs() as logs:
        await shared.acquire()
    assert [e["event"] for e in logs] == ["ratelimit.store_unreachable"]
    assert logs[0]["error"] == "TimeoutError"


async def test_a_hold_the_store_cannot_take_still_holds_this_process(
    limiter: Made, slept: list[float]
) -> None:
    shared, buckets = limiter
    await shared.acquire()
    buckets.error = ConnectionError("down")
    with structlog.testing.capture_logs() as logs:
        await shared.hold(2.0)
        await shared.acquire()
    assert [e["event"] for e in logs] == ["ratelimit.store_unreachable"]
    assert slept == pytest.approx([2.1])


async def test_the_local_limiter_holds_too() -> None:
    clock, slept = Clock(0.0), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    local = RateLimiter(RATE, burst=3, clock=clock, sleep=sleep)
    await local.hold(2.0)  # the burst is gone and nothing is due for 2 s
    await local.acquire()
    await local.acquire()
    assert slept == pytest.approx([2.1, 2.2])


def test_leanix_is_paced_through_the_store_unless_told_otherwise() -> None:
    database: Any = type("Db", (), {"rate_limits": MemoryBuckets()})()
    api = LeanixApi(api_token="api-token-never-stored", rate_limit_rps=12)
    shared = leanix_pace(api, database)
    alone = leanix_pace(LeanixApi(api_token="t", rate_limit_shared=False), database)
    assert isinstance(shared, SharedRateLimiter)
    assert shared.rate_per_s == 12
    assert shared.name == rate_limit_key(api)
    assert shared.name.startswith("leanix:") and "never-stored" not in shared.name
    assert isinstance(alone, RateLimiter)
    other = leanix_pace(LeanixApi(api_token="another-token"), database)
    assert isinstance(other, SharedRateLimiter) and other.name != shared.name
