"""The worker side of the end-to-end benchmark: a handler that notes when each event arrives.

The note is time.perf_counter() at handler start. On Linux that clock is CLOCK_MONOTONIC,
shared by every process on the machine, so it compares with the load generator's send
times. A small HTTP app hands the notes over: GET /count, then GET /seen.
"""

from __future__ import annotations

import time

from aiohttp import web

from service.cloudevent import CloudEvent
from service.worker.registry import Context, Registry


class Recorder:
    """Event id -> perf_counter at the start of its first handling; repeats are counted."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.repeats = 0

    async def on_event(self, event: CloudEvent, context: Context) -> None:
        now = time.perf_counter()
        if event.id in self.seen:
            self.repeats += 1
        else:
            self.seen[event.id] = now

    def registry(self) -> Registry:
        """A registry whose one handler, for every event type, is this recorder."""
        registry = Registry()
        registry.add("#", self.on_event, name="bench.recorder")
        return registry

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/count", self._count)
        app.router.add_get("/seen", self._seen)
        return app

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response({"seen": len(self.seen), "repeats": self.repeats})

    async def _seen(self, request: web.Request) -> web.Response:
        return web.json_response({"seen": self.seen, "repeats": self.repeats})
