"""A simulated HTTP automation endpoint (an n8n webhook, a Power Automate HTTP trigger, an
in-house service), for the `http` platform's tests and the lab.

- `POST|PUT /flows/<name>[/<anything>]` starts a run when the request carries the API key
  header (else 401). It is recorded (method, path, query, headers, JSON body), then
  answered by the flow's mode: "async" 202 + `Location: /flows/<name>/runs/<id>` and
  `{"id", "status": "queued", "statusUrl"}`; "sync" 200 `{"id", "status", "outputs"}`
  (the run is over); "elsewhere" 202 with a Location on another host (which must not be
  followed); "redirect" 307 to that other host, the run not started; "silent" 202 and no
  status URL at all (only the callback tells). The other host is `elsewhere`.
- `GET /flows/<name>/runs/<id>` answers `{"id", "status": queued|running|succeeded|failed,
  "outputs", "error"}` with the API key.
- A run works for `run_duration_s`, then ends with the next outcome and, if its body held
  a `callbackUrl`, POSTs `{"correlationId", "status", "outputs", "detail", "runId"}` with
  the run's X-Correlation-Id: signed (Standard Webhooks) when the simulator has a secret,
  else with `Authorization: Bearer <the body's callbackToken>`, as a flow that cannot sign.
Faults (latency, 429 + Retry-After, 5xx, hangs, lost answers, dropped callbacks) as in
service/simulators/base.py. Never blocks the loop.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from multidict import CIMultiDict

from service.simulators.base import Simulator, json_response
from service.vendors.signatures import sign_standard

Mode = Literal["async", "sync", "elsewhere", "redirect", "silent"]
API_KEY_HEADER = "X-Api-Key"
FAILURE = "step 2 of the flow failed: simulated error"


@dataclass
class Run:
    id: str
    flow: str
    correlation_id: str
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any
    status: str = "queued"
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def answer(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "outputs": self.outputs, "error": self.error}


class HttpEndpointSimulator(Simulator):
    """Flows behind one API key; each call starts a run that ends and calls back signed."""

    name = "http"

    def __init__(
        self, api_key: str, callback_secret: str | None, run_duration_s: float = 0.2
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.callback_secret = callback_secret
        self.run_duration_s = run_duration_s
        self.modes: dict[str, Mode] = {}
        self.runs: dict[str, Run] = {}
        self.refused: list[dict[str, Any]] = []  # calls answered 401
        self.callbacks: list[dict[str, Any]] = []
        self._outcomes: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self.elsewhere = "https://elsewhere.example/steal"

    def add_flow(self, name: str, mode: Mode = "async") -> str:
        """A flow's start URL."""
        self.modes[name] = mode
        return f"{self.base_url}/flows/{name}"

    def next_outcome(self, status: str, outputs: dict[str, Any] | None = None) -> None:
        """The next run to end ends `status` ("succeeded" or "failed") with `outputs`."""
        self._outcomes.append((status, outputs or {}))

    def state(self) -> dict[str, Any]:
        return {"runs": [run.answer() for run in self.runs.values()],
                "callbacks": self.callbacks, "refused": len(self.refused)}  # fmt: skip

    def routes(self, app: web.Application) -> None:
        app.router.add_route("POST", "/flows/{flow}", self._start)
        app.router.add_route("POST", "/flows/{flow}/{rest:.*}", self._start)
        app.router.add_route("PUT", "/flows/{flow}/{rest:.*}", self._start)
        app.router.add_get("/flows/{flow}/runs/{id}", self._status)

    async def _start(self, request: web.Request) -> web.Response:
        if not self._key_ok(request):
            self.refused.append({"path": request.path, "headers": dict(request.headers)})
            return json_response({"error": "missing or wrong API key"}, 401)
        flow = request.match_info["flow"]
        if flow not in self.modes:
            return json_response({"error": f"no flow {flow}"}, 404)
        if self.modes[flow] == "redirect":
            return json_response({"moved": self.elsewhere}, 307, {"Location": self.elsewhere})
        run = await self._record(request, flow)
        self.spawn(self._work(run))
        return self._answer(run, self.modes[flow])

    async def _record(self, request: web.Request, flow: str) -> Run:
        raw = await request.read()
        run = Run(
            id=f"run-{next(self._ids)}", flow=flow,
            correlation_id=request.headers.get("X-Correlation-Id", ""),
            method=request.method, path=request.raw_path.split("?")[0],
            query=dict(request.query), headers=request.headers.copy(),
            body=orjson.loads(raw) if raw.strip() else None,
        )  # fmt: skip
        self.runs[run.id] = run
        return run

    def _answer(self, run: Run, mode: Mode) -> web.Response:
        status_path = f"/flows/{run.flow}/runs/{run.id}"
        if mode == "sync":
            self._end(run)
            return json_response(run.answer())
        if mode == "silent":
            return json_response({"accepted": True}, 202)
        location = self.elsewhere if mode == "elsewhere" else status_path
        doc = {"id": run.id, "status": run.status, "statusUrl": location}
        return json_response(doc, 202, {"Location": location})

    async def _status(self, request: web.Request) -> web.Response:
        if not self._key_ok(request):
            return json_response({"error": "missing or wrong API key"}, 401)
        run = self.runs.get(request.match_info["id"])
        if run is None or run.flow != request.match_info["flow"]:
            return json_response({"error": "no such run"}, 404)
        return json_response(run.answer())

    def _key_ok(self, request: web.Request) -> bool:
        given = request.headers.get(API_KEY_HEADER, "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    async def _work(self, run: Run) -> None:
        """Run, end, and call back if the body asked for it."""
        if run.status != "queued":
            return  # a sync run is over already
        run.status = "running"
        await asyncio.sleep(self.run_duration_s)  # the work, simulated
        self._end(run)
        await self._call_back(run)

    def _end(self, run: Run) -> None:
        status, outputs = self._outcomes.pop(0) if self._outcomes else ("succeeded", {})
        run.status, run.outputs = status, outputs
        run.error = FAILURE if status == "failed" else None

    async def _call_back(self, run: Run) -> None:
        url = run.body.get("callbackUrl") if isinstance(run.body, dict) else None
        record = {"run": run.id, "correlation_id": run.correlation_id}
        if not isinstance(url, str):
            self.callbacks.append({**record, "outcome": "no-callback"})
            return
        if self.faults.drop_callbacks:
            self.callbacks.append({**record, "outcome": "dropped"})
            return
        doc = {"correlationId": run.correlation_id, "status": run.status,
               "outputs": run.outputs, "detail": run.error, "runId": run.id}  # fmt: skip
        body = orjson.dumps(doc)
        status = await self.post(
            url, body, self._authenticated(body, run.body.get("callbackToken"))
        )
        self.callbacks.append({**record, "outcome": "sent", "status": status})

    def _authenticated(self, body: bytes, token: Any) -> dict[str, str]:
        if self.callback_secret is None:
            return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        return self.signed(body)

    def signed(self, body: bytes) -> dict[str, str]:
        """Standard Webhooks headers for `body`, under the endpoint's secret."""
        assert self.callback_secret is not None
        msg_id, now = f"msg_{secrets.token_hex(8)}", int(time.time())
        return {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign_standard(self.callback_secret, msg_id, now, body),
        }
