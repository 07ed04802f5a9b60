"""Token buckets: the pace of a client's requests to an API with a rate limit.

    RateLimiter         one process's bucket
    SharedRateLimiter   one bucket for every worker that shares the store and the API user
                        (LeanIX limits each user, not each process): tokens are taken from
                        the store a few at a time and handed out here at their due times;
                        while the store cannot be reached, the process paces itself alone

Both answer a 429 with `hold(wait_s)`: nothing more is sent, by anyone sharing the
bucket, until the API's Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger("service.clients.ratelimit")

STORE_TIMEOUT_S = 2.0  # a store slower than this is taken as unreachable
STORE_RETRY_S = 5.0  # after a failure, pace alone this long before asking the store again
BATCH = 5  # tokens taken from the store at once, at most: one round trip per few requests
HOLD_S = 1.0  # a token taken from the store and not used this long after its due time lapses


class Pacer(Protocol):
    """What a client paces its requests with."""

    async def acquire(self) -> None: ...

    async def hold(self, wait_s: float) -> None: ...


class Buckets(Protocol):
    """Shared token buckets (service/store/ratelimit.py); ConnectionError when unreachable."""

    async def take(
        self, name: str, count: int, rate_per_s: float, burst: float, now: float
    ) -> tuple[float, float]: ...

    async def hold(self, name: str, rate_per_s: float, now: float, until: float) -> None: ...


class RateLimiter:
    """A token bucket: `rate_per_s` acquisitions a second on average, `burst` at once."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._stamp = clock()  # `_tokens` is the level at `_stamp`, which a hold puts ahead

    async def acquire(self) -> None:
        """Take one token, sleeping until it is due."""
        now = self._clock()
        refill = (now - self._stamp) * self.rate_per_s  # negative while a hold lasts
        self._tokens = min(self.burst, self._tokens + refill)
        self._stamp = now
        # Taken before sleeping, so each later caller queues behind this one without a lock.
        self._tokens -= 1
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate_per_s)

    async def hold(self, wait_s: float) -> None:
        """Let no token fall due before `wait_s` from now (the API said to wait)."""
        now = self._clock()
        level = self._tokens + max(0.0, now - self._stamp) * self.rate_per_s
        self._tokens = min(0.0, level)
        self._stamp = max(self._stamp, now + wait_s)


class SharedRateLimiter:
    """One token bucket, `name` in the store, for every process pacing the same API user."""

    def __init__(
        self,
        buckets: Buckets,
        name: str,
        rate_per_s: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.time,  # shared by hosts, unlike a monotonic clock
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.alone = RateLimiter(rate_per_s, burst, clock, sleep)  # while the store is out
        self.name = name
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets = buckets
        self._clock = clock
        self._sleep = sleep
        self._due: deque[float] = deque()  # tokens taken from the store, not handed out yet
        self._lock = asyncio.Lock()  # one store round trip at a time per process
        self._waiting = 0
        self._store_back_at = 0.0  # before this, the store is not asked (it just failed)

    def __repr__(self) -> str:
        return f"SharedRateLimiter(rate_per_s={self.rate_per_s!r})"

    async def acquire(self) -> None:
        """Take one token of the shared bucket, sleeping until it is due."""
        self._waiting += 1
        try:
            due = await self._next_due()
        finally:
            self._waiting -= 1
        if due is None:
            await self.alone.acquire()
            return
        delay = due - self._clock()
        if delay > 0:
            await self._sleep(delay)

    async def hold(self, wait_s: float) -> None:
        """Let nothing fall due, for any process sharing the bucket, before `wait_s`."""
        now = self._clock()
        self._due.clear()  # taken before the API said to wait
        await self.alone.hold(wait_s)
        if now < self._store_back_at:
            return
        try:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                await self._buckets.hold(self.name, self.rate_per_s, now, now + wait_s)
        except (ConnectionError, TimeoutError) as exc:
            self._store_failed(now, exc)

    async def _next_due(self) -> float | None:
        """When the next token is due: one taken earlier, or a few taken now; None alone."""
        async with self._lock:
            now = self._clock()
            while self._due and self._due[0] + HOLD_S < now:
                self._due.popleft()  # lapsed: spent late, it would add to others' pace
            if not self._due:
                taken = await self._take(now, min(BATCH, max(1, self._waiting)))
                if taken is None:
                    return None
                self._due.extend(taken)
            return self._due.popleft()

    async def _take(self, now: float, count: int) -> list[float] | None:
        if now < self._store_back_at:
            return None
        try:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                tokens, stamp = await self._buckets.take(
                    self.name, count, self.rate_per_s, self.burst, now
                )
        except (ConnectionError, TimeoutError) as exc:
            self._store_failed(now, exc)
            return None
        if self._store_back_at:
            self._store_back_at = 0.0
            log.info("ratelimit.shared_again", bucket_name=self.name)
        return due_times(tokens, stamp, count, self.rate_per_s)

    def _store_failed(self, now: float, exc: Exception) -> None:
        if not self._store_back_at:
            log.warning(
                "ratelimit.store_unreachable",
                error=str(exc) or type(exc).__name__,
                action=f"pacing this process alone for {STORE_RETRY_S:g} s at a time",
            )
        self._store_back_at = now + STORE_RETRY_S


def due_times(tokens: float, stamp: float, count: int, rate_per_s: float) -> list[float]:
    """When each of `count` tokens just taken falls due: the bucket holds `tokens` after
    them at `stamp`, so the last one is owed -tokens/rate after stamp, and so on back."""
    owed = [-(tokens + later) for later in range(count - 1, -1, -1)]
    return [stamp + max(0.0, debt) / rate_per_s for debt in owed]
