"""A simulated Robocorp Control Room API v1, for tests and the demo.

Serves under /api/v1 like cloud.robocorp.com. A started process run moves new ->
in_progress -> completed (or unresolved) over `run_duration_s`; a run started with a
`callback` then posts a webhook body to its url, signed like Control Room's webhooks:
`x-rc-signature` = hex HMAC-SHA256 of the exact body with the callback's secret. Errors
are `{"error": {"code", "message"}}`. It refuses what Control Room's API refuses (a callback
without url, secret and callback_events; a typed body without its list), as held to
../shared/contracts/robocorp.json by tests/contracts. It never blocks: runs advance in tasks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from service.simulators.base import Handler, Simulator, json_response
from service.vendors.robocorp.simulator_webhooks import READ_WEBHOOKS, WRITE_WEBHOOKS, SimWebhooks

API = "/api/v1"
START_TYPES = frozenset({"with_payloads", "with_work_item_ids", "with_inputs"})
TRIGGER, READ = "Processes.trigger_processes", "Processes.read_processes"  # the spec's names
EVENTS = frozenset({"started", "completed", "unresolved"})


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status)


class BadRequest(Exception):
    """A start request Control Room would answer 400 to."""


@dataclass
class Run:
    id: str
    process_id: str
    process_name: str
    payloads: list[Any]
    callback: dict[str, Any] | None
    outcome: str  # "completed" or "unresolved"
    state: str = "new"
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def resource(self) -> dict[str, Any]:
        """The run as a ProcessRunResource."""
        duration = None
        if self.started_at and self.ended_at:
            duration = round((self.ended_at - self.started_at).total_seconds(), 3)
        return {
            "id": self.id,
            "state": self.state,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration": duration,
            "process": {"id": self.process_id, "name": self.process_name},
            "started_by": {"type": "api", "details": None},
        }


class RobocorpSimulator(Simulator):
    """Control Room's processes and process runs, with faults and signed callbacks."""

    name = "robocorp"

    def __init__(
        self,
        api_key: str = "sim-rc-wskey-0123456789",
        workspace_id: str = "ws-sim",
        *,
        run_duration_s: float = 0.2,
        permissions: frozenset[str] = frozenset({TRIGGER, READ, READ_WEBHOOKS, WRITE_WEBHOOKS}),
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.workspace_id = workspace_id
        self.permissions = permissions  # the API key's
        self.run_duration_s = run_duration_s
        self.processes: dict[str, str] = {}  # id -> name
        self.runs: dict[str, Run] = {}
        self.callbacks: list[dict[str, Any]] = []  # each callback sent, failed or dropped
        self.webhooks = SimWebhooks(self.processes)
        self._outcomes: list[str] = []

    # --- control, from tests -------------------------------------------------------------

    def add_process(self, name: str, process_id: str | None = None) -> str:
        """Add a process; return its id."""
        process_id = process_id or str(uuid.uuid4())
        self.processes[process_id] = name
        return process_id

    def next_outcome(self, state: str = "unresolved") -> None:
        """End the next run in this state ("completed" or "unresolved")."""
        self._outcomes.append(state)

    def state(self) -> dict[str, Any]:
        runs = [
            {**r.resource(), "payloads": r.payloads, "callback": r.callback}
            for r in self.runs.values()
        ]
        hooks = list(self.webhooks.hooks.values())
        return {"processes": self.processes, "runs": runs, "callbacks": self.callbacks} | {
            "webhooks": [{k: v for k, v in h.items() if k != "secret"} for h in hooks]
        }

    # --- the vendor API ------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        workspace = f"{API}/workspaces/{{ws}}"
        add, guard = app.router.add_route, self._guard
        add("POST", f"{workspace}/processes/{{pid}}/process-runs", guard(self._start_run, TRIGGER))
        add("GET", f"{workspace}/process-runs/{{rid}}", guard(self._get_run, READ))
        self.webhooks.routes(app, workspace, guard)

    def _guard(self, handler: Handler, permission: str) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, f"RC-WSKEY {self.api_key}".encode()):
                return _error(401, "unauthorized", "a valid RC-WSKEY API key is required")
            if request.match_info["ws"] != self.workspace_id:
                return _error(403, "forbidden", "the API key has no access to this workspace")
            if permission not in self.permissions:
                return _error(403, "forbidden", f"the API key lacks the permission {permission}")
            return await handler(request)

        return checked

    async def _start_run(self, request: web.Request) -> web.Response:
        process_id = request.match_info["pid"]
        if process_id not in self.processes:
            # The spec lists 400, 403 and 409 here, no 404: a key cannot trigger a process
            # it cannot see.
            return _error(403, "forbidden", f"process {process_id} not found in the workspace")
        try:
            kind, payloads, callback = parse_start(await request.read())
        except BadRequest as exc:
            return _error(400, "invalid_request", str(exc))
        if kind == "with_inputs":
            return json_response({"started": False})  # the input queue is always empty here
        run = self._start(process_id, payloads, callback)
        return json_response({"started": True, "id": run.id})

    async def _get_run(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["rid"])
        if run is None:
            return _error(404, "not_found", "process run not found")
        return json_response(run.resource())

    # --- runs ----------------------------------------------------------------------------

    def _start(self, process_id: str, payloads: list[Any], callback: dict[str, Any] | None) -> Run:
        outcome = self._outcomes.pop(0) if self._outcomes else "completed"
        if any(isinstance(p, dict) and p.get("forceFail") in (True, "true") for p in payloads):
            outcome = "unresolved"
        name = self.processes[process_id]
        run = Run(str(uuid.uuid4()), process_id, name, payloads, callback, outcome)
        self.runs[run.id] = run
        self.spawn(self._drive(run))
        return run

    async def _drive(self, run: Run) -> None:
        """Move a run through in_progress to its outcome, calling back on the way."""
        quarter = self.run_duration_s / 4
        await asyncio.sleep(quarter)  # simulated time in this run's own task
        run.state, run.started_at = "in_progress", _now()
        await self._call_back(run, "started")
        await asyncio.sleep(3 * quarter)
        run.state, run.ended_at = run.outcome, _now()
        await self._call_back(run, run.outcome)

    # --- callbacks -----------------------------------------------------------------------

    async def _call_back(self, run: Run, event: str) -> None:
        if run.callback is None or event not in run.callback["callback_events"]:
            return
        record: dict[str, Any] = {"runId": run.id, "event": f"process_run.{event}"}
        if self.faults.drop_callbacks:
            self.callbacks.append({**record, "dropped": True})
            return
        body = orjson.dumps(self._webhook(run, event))
        digest = hmac.new(run.callback["secret"].encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "x-rc-signature": digest}
        status = await self.post(run.callback["url"], body, headers)
        result = {"status": status} if status is not None else {"error": "undelivered"}
        self.callbacks.append({**record, **result})

    def _webhook(self, run: Run, event: str) -> dict[str, Any]:
        payload = {
            "workspaceId": self.workspace_id,
            "processId": run.process_id,
            "processRunId": run.id,
            "state": run.state,
        }
        return {
            "id": str(uuid.uuid4()),
            "webhookEventTimestamp": _iso(_now()),
            "event": f"process_run.{event}",
            "payload": payload,
        }


def parse_start(body: bytes) -> tuple[str, list[Any], dict[str, Any] | None]:
    """(type, payloads, callback) of a start request; raise BadRequest if it is not one."""
    try:
        doc = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise BadRequest("the body must be an object")
    kind = doc.get("type", "default")
    if kind != "default" and kind not in START_TYPES:
        raise BadRequest(f"unknown type {kind!r}")
    payloads = doc.get("payloads", []) if kind == "with_payloads" else []
    if not isinstance(payloads, list) or (kind == "with_payloads" and not payloads):
        raise BadRequest("with_payloads needs a non-empty list of payloads")
    ids = doc.get("work_item_ids")
    if kind == "with_work_item_ids" and not _strings(ids):
        raise BadRequest("with_work_item_ids needs a list of work_item_ids")
    return kind, payloads, parse_callback(doc.get("callback"))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def parse_callback(doc: Any) -> dict[str, Any] | None:
    """A run's callback object, checked; None when there is none. Control Room requires
    url, secret and callback_events (its spec's `required`)."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise BadRequest("callback must be an object")
    for name in ("url", "secret"):
        if not isinstance(doc.get(name), str):
            raise BadRequest(f"callback needs a {name} (a string)")
    events = doc.get("callback_events")
    if not _strings(events) or not set(events or ()) <= EVENTS:
        raise BadRequest(f"callback needs callback_events, a list among {sorted(EVENTS)}")
    return {"url": doc["url"], "secret": doc["secret"], "callback_events": events}
