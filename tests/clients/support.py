"""Helpers shared by the client tests: a callback inbox and deadline-bound polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson
from aiohttp import web
from multidict import CIMultiDict

from service.runs import RunState

T = TypeVar("T")

POLL_INTERVAL_S = 0.02


class Callback(NamedTuple):
    """One request the inbox received."""

    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class CallbackInbox:
    """A tiny receiving app on loopback: what arrived, and the statuses to answer with.

    It accepts a POST to any path; `url` is one such address to hand out. Each request
    is answered with the next status in `answers`, or an empty 200 once they run out.
    """

    base_url: str = ""
    received: asyncio.Queue[Callback] = field(default_factory=asyncio.Queue)
    answers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base_url}/callback"

    async def accept(self, request: web.Request) -> web.Response:
        self.received.put_nowait(Callback(request.headers.copy(), await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def next(self, timeout_s: float = 5.0) -> Callback:
        """The next callback to arrive, failing after `timeout_s`."""
        return await asyncio.wait_for(self.received.get(), timeout_s)

    def take_all(self) -> list[Callback]:
        """Every callback received so far, oldest first, emptying the queue."""
        taken = []
        while not self.received.empty():
            taken.append(self.received.get_nowait())
        return taken


def is_terminal(state: RunState) -> bool:
    return state.terminal


async def poll_state(
    status: Callable[[], Awaitable[RunState]],
    until: Callable[[RunState], bool] = is_terminal,
    deadline_s: float = 5.0,
) -> RunState:
    """Call `status()` until `until` holds for its answer, failing after the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        state = await status()
        if until(state):
            return state
        assert loop.time() < end, f"still {state} after {deadline_s} s"
        await asyncio.sleep(POLL_INTERVAL_S)


async def wait_until(check: Callable[[], T], deadline_s: float = 5.0) -> T:
    """Wait until `check()` is truthy and return it, failing after the deadline."""
    end = asyncio.get_running_loop().time() + deadline_s
    while not (found := check()):
        assert asyncio.get_running_loop().time() < end, "condition never became true"
        await asyncio.sleep(POLL_INTERVAL_S)
    return found
