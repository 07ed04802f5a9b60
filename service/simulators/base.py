"""What every simulator shares: fault injection, a control API, and serving on loopback.

Faults are set from Python (`sim.faults.fail(503, times=2)`) or over HTTP
(`POST /_sim/faults {"fail": [503, 503], "latency_s": 0.2, "lose_answers": ["StartJobs"]}`),
and apply to the vendor API routes, never to `/_sim/*`. `GET /_sim/state` shows what the
simulator holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Faults to inject into the next requests of a simulated API."""

    latency_s: float = 0.0
    pending: list[int] = field(default_factory=list)  # statuses to answer, one per request
    retry_after_s: int = 1  # sent with an injected 429
    hang_next: int = 0  # requests that never get an answer (the client times out)
    # the next request whose path contains each entry is carried out, but answered 502
    lose_answers: list[str] = field(default_factory=list)
    drop_callbacks: bool = False  # completed runs do not call back
    requests: int = 0  # vendor API requests seen (faulted or not)

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (503, 500, 429, ...)."""
        self.pending.extend([status] * times)

    def hang(self, times: int = 1) -> None:
        self.hang_next += times

    def lose_answer(self, path_part: str = "", times: int = 1) -> None:
        """Carry out the next `times` requests whose path contains `path_part`, but answer
        502, as a gateway that lost the answer: the vendor acted, the client cannot know."""
        self.lose_answers.extend([path_part] * times)

    def answer_lost(self, path: str) -> bool:
        """Whether this request's answer is to be lost (and the loss is used up)."""
        for index, part in enumerate(self.lose_answers):
            if part in path:
                del self.lose_answers[index]
                return True
        return False

    def reset(self) -> None:
        self.latency_s, self.pending, self.hang_next, self.lose_answers = 0.0, [], 0, []
        self.drop_callbacks, self.retry_after_s = False, 1

    def update(self, doc: dict[str, Any]) -> None:
        self.latency_s = float(doc.get("latency_s", self.latency_s))
        self.pending.extend(int(s) for s in doc.get("fail", []))
        self.retry_after_s = int(doc.get("retry_after_s", self.retry_after_s))
        self.hang_next += int(doc.get("hang", 0))
        self.lose_answers.extend(str(part) for part in doc.get("lose_answers", []))
        self.drop_callbacks = bool(doc.get("drop_callbacks", self.drop_callbacks))


def json_response(
    doc: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc), status=status, content_type="application/json", headers=headers
    )


def fault_middleware(faults: Faults) -> Middleware:
    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        faults.requests += 1
        if faults.hang_next > 0:
            faults.hang_next -= 1
            await asyncio.Event().wait()  # never answers; the client's timeout ends it
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)  # injected latency, by design
        if faults.pending:
            status = faults.pending.pop(0)
            headers = {"Retry-After": str(faults.retry_after_s)} if status == 429 else None
            return json_response({"error": f"injected fault {status}"}, status, headers)
        if faults.answer_lost(request.path):
            await handler(request)  # the work is done; only its answer goes missing
            return json_response({"error": "injected fault: the answer was lost"}, 502)
        return await handler(request)

    return inject


CALLBACK_TIMEOUT_S = 5.0


class Simulator:
    """Base of a simulated vendor API: subclasses add routes in `routes()`.

    While serving it owns one outbound session (for callbacks and webhooks) and the
    background tasks that drive runs; `spawn()` and `post()` use them.
    """

    name = "simulator"

    def __init__(self) -> None:
        self.faults = Faults()
        self.base_url = ""
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background while serving (it is cancelled on shutdown)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int | None:
        """POST a callback; the answer's status, or None if it could not be delivered."""
        assert self._session is not None, "callbacks are sent only while serving"
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _outbound(self, app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as self._session:
            yield
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What the simulator holds, for /_sim/state and for tests."""
        return {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[fault_middleware(self.faults)])
        app.router.add_post("/_sim/faults", self._set_faults)
        app.router.add_post("/_sim/reset", self._reset_faults)
        app.router.add_get("/_sim/state", self._get_state)
        app.cleanup_ctx.append(self._outbound)
        self.routes(app)
        return app

    async def _set_faults(self, request: web.Request) -> web.Response:
        self.faults.update(await request.json())
        return json_response({"ok": True})

    async def _reset_faults(self, request: web.Request) -> web.Response:
        self.faults.reset()
        return json_response({"ok": True})

    async def _get_state(self, request: web.Request) -> web.Response:
        return json_response(self.state())

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on loopback (a free port by default); yields the base URL."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{bound}"
        try:
            yield self.base_url
        finally:
            await runner.cleanup()
