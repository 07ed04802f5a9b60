"""Waiting in tests: poll a condition with a deadline, never sleep for a result."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

POLL_INTERVAL_S = 0.05


async def poll_interval() -> None:
    """Yield between two checks of a condition polled with a deadline."""
    await asyncio.sleep(POLL_INTERVAL_S)


async def eventually(check: Callable[[], Any], timeout_s: float = 15.0, what: str = "") -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail at the deadline."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return result
                await poll_interval()
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s} s: {what or check}") from None
