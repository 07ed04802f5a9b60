"""Robocorp Control Room API v1: start a process run with one work item, and read its state.

Completion can also arrive by push: `start()` asks Control Room for a per-run callback,
which our receiver takes at /callbacks/robocorp (../shared/reference/vendors.md §2).
Control Room's error bodies are `{"error": {"code", "message"}}`; the code goes into our
error text because it says more than the status does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from service.clients.base import Response, RunnerApi
from service.errors import VendorRejected
from service.runs import RunState, RunStatus
from service.vendors.robocorp.settings import RobocorpApi

# ProcessRunResource.state -> ours. "unresolved" means some work items failed and wait for
# someone to retry or resolve them: terminal for us. [U] A state not listed here keeps
# the run "running": the enum is confirmed, so a new word is more likely a new phase.
STATES: Mapping[str, RunStatus] = {
    "new": "pending",
    "in_progress": "running",
    "stopping": "running",
    "completed": "succeeded",
    "unresolved": "failed",
}
CALLBACK_EVENTS = ("completed", "unresolved")
# The API key's permissions each call needs (contracts/robocorp.json: reading a run takes
# read_processes, not read_runs).
PERMISSIONS = "Processes.trigger_processes to start runs, Processes.read_processes to read them"


class RobocorpClient(RunnerApi):
    """Start Control Room process runs; target = {"process_id": ..., "workspace_id"?: ...}."""

    vendor = "robocorp"

    def __init__(self, session: aiohttp.ClientSession, settings: RobocorpApi) -> None:
        super().__init__(session, settings.timeout_s)
        self._base = settings.base_url.rstrip("/")
        self._workspace = settings.workspace_id
        self._headers = {
            "Authorization": f"RC-WSKEY {settings.api_key}",
            "Accept": "application/json",
        }

    async def start(
        self,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        callback_url: str | None = None,
        callback_secret: str | None = None,
    ) -> RunState:
        """Start a run of the target process with the inputs as its one work item."""
        process = _required(target, "process_id")
        url = self._url(target, f"/processes/{_segment(process)}/process-runs")
        body = start_body(inputs, correlation_id, callback_url, callback_secret)
        headers = {**self._headers, "Content-Type": "application/json"}
        response = await self.call("POST", url, data=orjson.dumps(body), headers=headers)
        return RunState(self.vendor, started_run_id(response.json()), "pending", "new")

    async def status(self, run_id: str, target: Mapping[str, Any]) -> RunState:
        """Read the run's state."""
        url = self._url(target, f"/process-runs/{_segment(run_id)}")
        doc = (await self.call("GET", url, headers=self._headers)).json()
        return run_state(run_id, doc if isinstance(doc, dict) else {})

    def translate(self, where: str, response: Response) -> Exception:
        """The error for an unexpected status, with Control Room's error code in its text
        (and on a 403, the permissions the API key needs)."""
        readable = with_error_text(response)
        if response.status == 403:
            hint = f" (the API key needs {PERMISSIONS})".encode()
            readable = dataclasses.replace(readable, body=readable.body[:200] + hint)
        return super().translate(where, readable)

    async def workspace(self, method: str, target: Mapping[str, Any], path: str, **kw: Any) -> Any:
        """Call `/workspaces/{ws}<path>` (the target's workspace, else the configured one);
        return the answer's JSON."""
        url = self._url(target, path)
        return (await self.call(method, url, headers=self._headers, **kw)).json()

    def _url(self, target: Mapping[str, Any], path: str) -> URL:
        workspace = target.get("workspace_id") or self._workspace
        if not isinstance(workspace, str) or not workspace:
            raise VendorRejected(self.vendor, "no workspace_id in the target or the settings")
        return URL(f"{self._base}/workspaces/{_segment(workspace)}{path}", encoded=True)


def start_body(
    inputs: Mapping[str, Any],
    correlation_id: str,
    callback_url: str | None,
    callback_secret: str | None,
) -> dict[str, Any]:
    """The process-runs request: one payload, and a callback when a URL and a secret are
    given (Control Room requires url, secret and callback_events; without a secret the run
    is polled)."""
    body: dict[str, Any] = {
        "type": "with_payloads",
        "payloads": [{**inputs, "correlationId": correlation_id}],
    }
    if callback_url and callback_secret:
        # [U] That Control Room signs per-run callbacks with this secret, like webhooks, is
        # unconfirmed (contracts/robocorp.json); our receiver refuses unsigned ones.
        body["callback"] = {
            "url": callback_url,
            "secret": callback_secret,
            "callback_events": [*CALLBACK_EVENTS],
        }
    return body


def started_run_id(doc: Any) -> str:
    """The run id of a start answer; `{"started": false}` means there was nothing to run."""
    if not isinstance(doc, dict) or doc.get("started") is False:
        raise VendorRejected("robocorp", "the process run did not start: nothing to run")
    run_id = doc.get("id")
    if not isinstance(run_id, str) or not run_id:
        # The run may have started: retrying could start it twice, so don't.
        raise VendorRejected("robocorp", "the process run started without an id")
    return run_id


def run_state(run_id: str, doc: Mapping[str, Any]) -> RunState:
    """A ProcessRunResource as a RunState."""
    state = str(doc.get("state") or "new")
    status = STATES.get(state, "running")
    outputs = {"duration_s": doc["duration"]} if doc.get("duration") is not None else {}
    detail = None
    if state == "unresolved":
        detail = "some work items failed and await a retry or resolution in Control Room"
    return RunState("robocorp", run_id, status, state, outputs, detail)


def with_error_text(response: Response) -> Response:
    """The response with a Control Room error body reduced to "code: message"."""
    try:
        doc = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return response
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return response
    code, message = error.get("code") or "unknown_error", error.get("message")
    text = f"{code}: {message}" if message else str(code)
    return dataclasses.replace(response, body=text.encode())


def _segment(text: str) -> str:
    return quote(text, safe="")


def _required(target: Mapping[str, Any], key: str) -> str:
    value = target.get(key)
    if not isinstance(value, str) or not value:
        raise VendorRejected("robocorp", f"the target needs a {key!r}")
    return value
