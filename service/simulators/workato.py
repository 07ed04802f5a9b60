"""A simulated Workato API Platform: recipes called as endpoints (vendors.md §4).

Each endpoint lives under `/<prefix>/<collection>-v1/<path>` and checks the `API-TOKEN`
header. Statuses follow Workato's documented meanings: 401 bad token, 404 unknown
endpoint or stopped recipe, 422 the recipe job failed, 500 missing parameters. A "sync"
recipe answers with its result; an "async" one answers "accepted" and later posts our
documented callback (README) with the bearer token it was given. It never blocks the loop.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web

from service.simulators.base import Simulator, json_response

Mode = Literal["sync", "async"]
OUTCOMES = ("completed", "failed")
FAILURE = "Recipe step 2 failed: simulated error"


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def job_id() -> str:
    """A job handle shaped like Workato's (`j-KGAKfhsz-GYoLe`)."""
    return f"j-{secrets.token_urlsafe(6)}-{secrets.token_urlsafe(3)}"


@dataclass
class Endpoint:
    """One API recipe behind an endpoint path."""

    path: str
    mode: Mode
    running: bool = True


@dataclass(frozen=True)
class Call:
    """What one accepted endpoint call asked for."""

    correlation_id: str
    inputs: dict[str, Any]
    callback_url: str | None
    callback_token: str | None


class WorkatoSimulator(Simulator):
    """API recipes in one collection, called with an access profile's auth token."""

    name = "workato"

    def __init__(
        self,
        api_token: str = "sim-workato-api-token",
        *,
        prefix: str = "acme",
        collection: str = "bridge",
        run_duration_s: float = 0.2,
    ) -> None:
        super().__init__()
        self._api_token = api_token
        self.prefix, self.collection = prefix, collection
        self.run_duration_s = run_duration_s
        self.endpoints: dict[str, Endpoint] = {}
        self.calls: list[dict[str, Any]] = []  # every endpoint call, bodies without tokens
        self.callbacks: list[dict[str, Any]] = []  # callback deliveries and drops
        self._outcomes: list[tuple[str, dict[str, Any] | None]] = []

    # --- control, for tests and the demo -------------------------------------------------

    @property
    def collection_path(self) -> str:
        return f"/{self.prefix}/{self.collection}-v1"

    def add_endpoint(self, path: str, mode: Mode = "async") -> str:
        """Publish a running API recipe at `path`; answer its full URL (after serve())."""
        if mode not in ("sync", "async"):
            raise ValueError("mode must be 'sync' or 'async'")
        path = path.strip("/")
        self.endpoints[path] = Endpoint(path, mode)
        return f"{self.base_url}{self.collection_path}/{path}"

    def stop_recipe(self, path: str) -> None:
        """Stop the recipe behind `path`: its endpoint answers 404."""
        self.endpoints[path.strip("/")].running = False

    def start_recipe(self, path: str) -> None:
        self.endpoints[path.strip("/")].running = True

    def next_outcome(self, outcome: str, outputs: dict[str, Any] | None = None) -> None:
        """End the next called recipe job as `completed` or `failed`."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self._outcomes.append((outcome, outputs))

    def state(self) -> dict[str, Any]:
        endpoints = {p: {"mode": e.mode, "running": e.running} for p, e in self.endpoints.items()}
        return {"endpoints": endpoints, "calls": self.calls, "callbacks": self.callbacks}

    # --- routes ----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.collection_path}/{{path:.+}}", self._call)

    async def _call(self, request: web.Request) -> web.Response:
        given = request.headers.get("API-TOKEN", "").encode()  # headers are case-insensitive
        if not given or not hmac.compare_digest(given, self._api_token.encode()):
            return json_response({"message": "Unauthorized"}, 401)
        endpoint = self.endpoints.get(request.match_info["path"].strip("/"))
        if endpoint is None or not endpoint.running:
            return json_response({"message": "Not found"}, 404)
        call = _parse_call(await request.read())
        self._record(endpoint, call)
        if call is None:
            return json_response({"message": "Missing or invalid parameters"}, 500)
        outcome, outputs = self._decide(call)
        handle = job_id()
        if endpoint.mode == "sync":
            return _sync_answer(handle, outcome, outputs)
        self.spawn(self._finish_later(handle, call, outcome, outputs))
        return json_response({"status": "accepted", "jobId": handle})

    def _record(self, endpoint: Endpoint, call: Call | None) -> None:
        doc: dict[str, Any] = {
            "path": endpoint.path,
            "mode": endpoint.mode,
            "valid": call is not None,
        }
        if call is not None:
            doc |= {"correlationId": call.correlation_id, "inputs": call.inputs}
            doc |= {"callbackUrl": call.callback_url, "callbackToken": bool(call.callback_token)}
        self.calls.append(doc)

    def _decide(self, call: Call) -> tuple[str, dict[str, Any]]:
        """The outcome of a job: queued by a test, else inputs.forceFail, else completed."""
        if self._outcomes:
            outcome, outputs = self._outcomes.pop(0)
        else:
            outcome = "failed" if call.inputs.get("forceFail") is True else "completed"
            outputs = None
        return outcome, outputs if outputs is not None else {"echo": call.inputs}

    async def _finish_later(
        self, handle: str, call: Call, outcome: str, outputs: dict[str, Any]
    ) -> None:
        await asyncio.sleep(self.run_duration_s)
        record: dict[str, Any] = {"jobId": handle, "correlationId": call.correlation_id}
        if not call.callback_url:
            self.callbacks.append({**record, "outcome": "no-callback"})
        elif self.faults.drop_callbacks:
            self.callbacks.append({**record, "outcome": "dropped"})
        else:
            status = await self._post_callback(handle, call, outcome, outputs)
            self.callbacks.append({**record, "status": status, "outcome": "sent"})

    async def _post_callback(
        self, handle: str, call: Call, outcome: str, outputs: dict[str, Any]
    ) -> int | None:
        """POST the recipe's last HTTP step: our documented callback body (README)."""
        assert call.callback_url is not None
        body = callback_body(handle, call, outcome, outputs)
        headers = {"Content-Type": "application/json", "webhook-id": f"workato-{handle}"}
        if call.callback_token:
            headers["Authorization"] = f"Bearer {call.callback_token}"
        return await self.post(call.callback_url, body, headers)


def callback_body(handle: str, call: Call, outcome: str, outputs: dict[str, Any]) -> bytes:
    """`{"status", "jobId", "correlationId", "completedAt", "outputs", "error"?}`."""
    doc: dict[str, Any] = {
        "status": outcome,
        "jobId": handle,
        "correlationId": call.correlation_id,
        "completedAt": now_iso(),
        "outputs": outputs if outcome == "completed" else {},
    }
    if outcome == "failed":
        doc["error"] = FAILURE
    return orjson.dumps(doc)


def _sync_answer(handle: str, outcome: str, outputs: dict[str, Any]) -> web.Response:
    """The recipe's response; a failed job is a 422 (vendors.md §4 API Platform errors)."""
    if outcome == "failed":
        return json_response({"status": "failed", "jobId": handle, "error": FAILURE}, 422)
    return json_response({"status": "completed", "jobId": handle, "outputs": outputs})


def _parse_call(body: bytes) -> Call | None:
    """The request's correlationId, inputs and callback; None if they are missing."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    correlation_id, inputs = doc.get("correlationId"), doc.get("inputs")
    if not isinstance(correlation_id, str) or not correlation_id or not isinstance(inputs, dict):
        return None
    callback = doc.get("callback")
    callback = callback if isinstance(callback, dict) else {}
    url, token = callback.get("url"), callback.get("token")
    return Call(
        correlation_id,
        inputs,
        url if isinstance(url, str) else None,
        token if isinstance(token, str) else None,
    )
