"""The shared rate limit on both databases: workers on separate connections share one pace.

Time is virtual: every limiter reads one fixed clock, and a sleep records when its caller
would wake instead of waiting. The grants' wake times then say, without timing anything,
how many calls each window allows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.clients.ratelimit import RateLimiter, SharedRateLimiter
from service.store import Database

RATE = 30.0
NOW = 1_000_000.0
PER_WORKER = 40


class Worker:
    """A limiter on a clock that stands still, whose sleep notes the wake-up and returns."""

    def __init__(self, make: Any, *args: Any) -> None:
        self.wakes: list[float] = []
        self.limiter = make(*args, clock=lambda: NOW, sleep=self._sleep)

    async def _sleep(self, seconds: float) -> None:
        self.wakes.append(NOW + seconds)

    async def granted(self, calls: int) -> list[float]:
        """Acquire `calls` tokens at once; answer when each call may go, sorted."""
        before = len(self.wakes)
        await asyncio.gather(*(self.limiter.acquire() for _ in range(calls)))
        woken = self.wakes[before:]
        return sorted([*woken, *[NOW] * (calls - len(woken))])


def shared(database: Database, name: str = "leanix:user") -> Worker:
    return Worker(SharedRateLimiter, database.rate_limits, name, RATE)


def most_in_a_window(times: list[float], window_s: float) -> int:
    """The most grants falling in any window of `window_s` seconds."""
    ordered = sorted(times)
    return max(
        sum(1 for t in ordered[i:] if t < start + window_s) for i, start in enumerate(ordered)
    )


@contextlib.asynccontextmanager
async def workers(database: Database, count: int) -> AsyncIterator[list[Database]]:
    """`count` stores on the same database, each with its own engine and connections."""
    url = database.engine.url.render_as_string(hide_password=False)
    others = [Database(url) for _ in range(count - 1)]
    try:
        yield [database, *others]
    finally:
        for other in others:
            await other.close()


async def test_three_workers_hold_the_combined_rate(database: Database) -> None:
    async with workers(database, 3) as stores:
        three = [shared(store) for store in stores]
        per_worker = await asyncio.gather(*(w.granted(PER_WORKER) for w in three))
    times = sorted(t for worker in per_worker for t in worker)

    assert len(times) == 3 * PER_WORKER
    # The n-th call of all three workers together goes no earlier than n / rate.
    assert all(t >= NOW + n / RATE - 1e-6 for n, t in enumerate(times))
    assert most_in_a_window(times, 1.0) <= RATE + 1  # the burst of 1, plus a second's worth
    assert all(len(worker) == PER_WORKER for worker in per_worker)  # nobody starved


async def test_three_processes_with_their_own_pace_would_not() -> None:
    three = [Worker(RateLimiter, RATE) for _ in range(3)]
    per_worker = await asyncio.gather(*(w.granted(PER_WORKER) for w in three))
    times = [t for worker in per_worker for t in worker]
    assert most_in_a_window(times, 1.0) >= 2.5 * RATE  # what the shared bucket prevents


async def test_a_429_seen_by_one_worker_holds_every_worker(database: Database) -> None:
    async with workers(database, 2) as stores:
        first, second = shared(stores[0]), shared(stores[1])
        await first.limiter.acquire()
        await first.limiter.hold(7.0)  # LeanIX answered 429 with Retry-After: 7
        [wake] = await second.granted(1)
        [other_user] = await shared(stores[1], "leanix:other").granted(1)
    assert wake >= NOW + 7.0
    assert other_user == NOW  # another user's bucket is not held


async def test_buckets_are_created_once_and_refill_up_to_their_burst(database: Database) -> None:
    store = database.rate_limits
    results = await asyncio.gather(*(store.take("b", 1, RATE, 2.0, NOW) for _ in range(3)))
    assert sorted(tokens for tokens, _ in results) == pytest.approx([-1.0, 0.0, 1.0])
    tokens, stamp = await store.take("b", 1, RATE, 2.0, NOW + 3600)
    assert (tokens, stamp) == pytest.approx((1.0, NOW + 3600))  # refilled to 2, one taken


async def test_a_hold_on_a_new_bucket_creates_it_held(database: Database) -> None:
    store = database.rate_limits
    await store.hold("fresh", RATE, NOW, NOW + 5)
    tokens, stamp = await store.take("fresh", 1, RATE, 1.0, NOW + 1)
    assert (tokens, stamp) == pytest.approx((-1.0, NOW + 5))  # due 1/rate after the hold


async def test_an_unreachable_store_is_a_connection_error_without_its_url() -> None:
    database = Database("postgresql+asyncpg://bridge:hunter2-secret@127.0.0.1:9/bridge")
    try:
        with pytest.raises(ConnectionError) as caught:
            await database.rate_limits.take("b", 1, RATE, 1.0, NOW)
    finally:
        await database.close()
    assert "hunter2-secret" not in str(caught.value)
    assert "unreachable" in str(caught.value)
