"""A token bucket: the pace of a client's requests to an API with a rate limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
        self._stamp = clock()

    async def acquire(self) -> None:
        """Take one token, sleeping until it is due."""
        now = self._clock()
        refill = (now - self._stamp) * self.rate_per_s
        self._tokens = min(self.burst, self._tokens + refill)
        self._stamp = now
        # Taken before sleeping, so each later caller queues behind this one without a lock.
        self._tokens -= 1
        if self._tokens < 0:
            await self._sleep(-self._tokens / self.rate_per_s)
