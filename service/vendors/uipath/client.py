"""UiPath Orchestrator (Automation Cloud): start a job of a process and read its state.

Authenticates as an external application (client credentials) and keeps the token until
shortly before it expires. Completion arrives by Orchestrator webhook when one is
configured on the tenant; `status()` is the polling fallback, which must always work
because Orchestrator disables a failing webhook for an hour (vendors.md §3).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import orjson

from service.clients.base import Response, RunnerApi
from service.errors import VendorRejected, VendorUnavailable
from service.runs import RunState, RunStatus
from service.vendors.uipath.settings import UipathApi

START_JOBS = "/odata/Jobs/UiPath.Server.Configuration.OData.StartJobs"
FOLDER_HEADER = "X-UIPATH-OrganizationUnitId"
TOKEN_MARGIN_S = 120.0  # uipathcli refreshes 2 min before expiry (vendors.md §3 Auth)

# JobDto.State -> our status. Suspended waits on a long-running workflow: not terminal.
STATES: Mapping[str, RunStatus] = {
    "Pending": "pending",
    "Running": "running",
    "Stopping": "running",
    "Terminating": "running",
    "Suspended": "running",
    "Resumed": "running",
    "Successful": "succeeded",
    "Faulted": "failed",
    "Stopped": "failed",
}
COUNTED_STRATEGIES = frozenset({"JobsCount", "ModernJobsCount"})

# StartJobs refusals as UiPath's own SDK reads them (contracts/uipath.json StartJobs notes):
# each is a deployment problem that a retry cannot fix, so each stays VendorRejected.
ADVICE: Mapping[tuple[int, str | None], str] = {
    (404, "1002"): "the release (process) or an attachment was not found: check the "
    "target's release_key and that the process is deployed in the folder",
    (400, "1100"): "the folder was not found or is not accessible: check folder_id and "
    "that the external application's robot account has access to it",
    (409, None): "Orchestrator cannot start the job in this folder (for example no "
    "unattended robot or user can run it): fix the folder, then replay the dead letter",
}


class UipathClient(RunnerApi):
    """Start and read Orchestrator jobs with an external application's token."""

    vendor = "uipath"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: UipathApi,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(session, settings.timeout_s)
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"UipathClient(base_url={self.base_url!r}, client_id={self.settings.client_id!r})"

    async def start(
        self,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        callback_url: str | None = None,
        callback_secret: str | None = None,
    ) -> RunState:
        """Start one job of the target's release; answer its pending state."""
        # callback_url/secret are ignored: Orchestrator has no per-job callback. Webhooks
        # are configured once per tenant (README "Pointing the platforms at the service").
        body = {"startInfo": start_info(target, inputs, correlation_id)}
        folder = self._folder(target)
        response = await self._request("POST", START_JOBS, folder, json=body, ok=(200, 201))
        jobs = _object(response).get("value")
        if not isinstance(jobs, list) or not jobs or not isinstance(jobs[0], dict):
            raise VendorUnavailable(self.vendor, "StartJobs answered without a job in 'value'")
        return self._state(jobs[0])

    async def find(self, target: Mapping[str, Any], correlation_id: str) -> RunState | None:
        """The job an earlier start created under this correlation id (its Reference), if any.

        A start whose answer was lost (a timeout, a 502, a crash) may still have created the
        job: asking before starting again keeps one event to one job.
        """
        quoted = correlation_id.replace("'", "''")  # an OData string literal
        query = {"$filter": f"Reference eq '{quoted}'", "$orderby": "Id asc", "$top": "1"}
        response = await self._request("GET", "/odata/Jobs", self._folder(target), params=query)
        jobs = _object(response).get("value")
        if not isinstance(jobs, list) or not jobs or not isinstance(jobs[0], dict):
            return None
        return self._state(jobs[0])

    async def status(self, run_id: str, target: Mapping[str, Any]) -> RunState:
        """Read the job's current state, outputs and error text."""
        if not run_id.isascii() or not run_id.isdigit():
            raise VendorRejected(self.vendor, f"run id {run_id!r} is not an Orchestrator job Id")
        response = await self._request("GET", f"/odata/Jobs({run_id})", self._folder(target))
        return self._state(_object(response))

    def _state(self, job: Mapping[str, Any]) -> RunState:
        state = job_run_state(job)
        return replace(state, url=f"{self.base_url}/odata/Jobs({state.run_id})")

    def _folder(self, target: Mapping[str, Any]) -> int:
        """The folder (organization unit) id: the target's, else the configured one."""
        raw = target.get("folder_id", self.settings.folder_id)
        try:
            folder = -1 if isinstance(raw, bool) else int(raw)
        except (TypeError, ValueError):
            raise VendorRejected(self.vendor, f"folder_id {raw!r} is not an integer") from None
        if folder <= 0:
            raise VendorRejected(
                self.vendor, "no folder: set clients.uipath.folder_id or the target's folder_id"
            )
        return folder

    async def tenant(self, method: str, path: str, **kwargs: Any) -> Response:
        """Call a tenant-level Orchestrator API (no folder), e.g. /odata/Webhooks."""
        return await self._request(method, path, None, **kwargs)

    async def _request(self, method: str, path: str, folder: int | None, **kwargs: Any) -> Response:
        """Call Orchestrator (in a folder, if given); on a 401, authenticate again, retry once."""
        url = self.base_url + path
        token = await self._bearer()
        try:
            return await self.call(method, url, headers=_headers(token, folder), **kwargs)
        except VendorRejected as exc:
            if exc.status != 401:
                raise
        await self._forget(token)
        token = await self._bearer()
        return await self.call(method, url, headers=_headers(token, folder), **kwargs)

    async def _bearer(self) -> str:
        """The cached access token, fetched under the lock when missing or nearly expired."""
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, self._renew_at = await self._fetch_token()
            return self._token

    async def _forget(self, refused: str) -> None:
        """Drop a refused token, unless a concurrent caller has already replaced it."""
        async with self._lock:
            if self._token == refused:
                self._token = None

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "scope": " ".join(self.settings.scopes.split()),  # exactly the configured ones
        }
        asked_at = self._clock()
        doc = _object(await self.call("POST", self.settings.identity_url, data=form, ok=(200,)))
        token = doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise VendorUnavailable(self.vendor, "the identity server answered without a token")
        return token, asked_at + _cache_for(doc.get("expires_in"))

    def translate(self, where: str, response: Response) -> Exception:
        """Orchestrator's and Identity's JSON errors, with their message and error code."""
        if response.status == 429 or response.status >= 500:
            return super().translate(where, response)
        error = error_of(response)
        if error is None:
            return super().translate(where, response)
        message, code = error
        text = f"{message} (errorCode {code})" if code is not None else message
        detail = f"{where} answered {response.status}: {text}"
        if message == "invalid_scope":
            detail += (
                f"; the external application is not granted every scope of"
                f" clients.uipath.scopes ({self.settings.scopes!r}): grant them or ask for fewer"
            )
        advice = ADVICE.get((response.status, code)) or ADVICE.get((response.status, None))
        if advice and where.endswith(START_JOBS):
            detail += f": {advice}"
        return VendorRejected(self.vendor, detail, status=response.status)


def start_info(
    target: Mapping[str, Any], inputs: Mapping[str, Any], correlation_id: str
) -> dict[str, Any]:
    """The StartJobs `startInfo` for one job of the target's release."""
    release = target.get("release_key")
    if not isinstance(release, str) or not release:
        raise VendorRejected("uipath", "the target needs a 'release_key' (the process key GUID)")
    strategy = str(target.get("robot_strategy") or "ModernJobsCount")
    info: dict[str, Any] = {
        "ReleaseKey": release,
        "Strategy": strategy,
        # A JSON-encoded string, not an object (vendors.md §3 StartProcessDto).
        "InputArguments": orjson.dumps({**inputs, "correlationId": correlation_id}).decode(),
        # Reference is kept on the job and shown in Orchestrator: findable without inputs.
        "Reference": correlation_id,
    }
    if strategy in COUNTED_STRATEGIES:
        info["JobsCount"] = 1
    return info


def job_run_state(job: Mapping[str, Any]) -> RunState:
    """A JobDto (REST) or a webhook's `Job` as a RunState."""
    vendor_state = str(job.get("State") or "")
    # An unknown state is taken as still running: polling goes on rather than guessing.
    status = STATES.get(vendor_state, "running")
    job_id = job.get("Id")
    return RunState(
        vendor="uipath",
        run_id="" if job_id is None else str(job_id),
        status=status,
        vendor_state=vendor_state,
        outputs=output_arguments(job.get("OutputArguments")),
        detail=job_detail(job),
    )


def job_detail(job: Mapping[str, Any]) -> str | None:
    """`Info`, and the job's error where it adds to it: `Error` in webhooks, `JobError`
    in REST (both a JobErrorDto: code, title, detail)."""
    info = str(job.get("Info") or "")
    error = job.get("Error") or job.get("JobError")
    if not isinstance(error, Mapping):
        return info or None
    text = ": ".join(str(error[k]) for k in ("code", "title", "detail") if error.get(k))
    if not info or not text:
        return info or text or None
    return info if str(error.get("detail") or text) in info else f"{info} ({text})"


def output_arguments(raw: Any) -> dict[str, Any]:
    """OutputArguments: a JSON string in REST, an object in webhooks; {} when absent."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}  # a finished job must not turn retryable over unreadable outputs
    return parsed if isinstance(parsed, dict) else {}


def _headers(token: str, folder: int | None) -> dict[str, str]:
    if folder is None:
        return {"Authorization": f"Bearer {token}"}
    return {"Authorization": f"Bearer {token}", FOLDER_HEADER: str(folder)}


def _cache_for(expires_in: Any) -> float:
    """Seconds to keep a token: until 2 min before expiry, at least half its lifetime."""
    try:
        lifetime = float(expires_in)
    except (TypeError, ValueError):
        lifetime = 3600.0  # the identity server's usual lifetime, when it omits expires_in
    # Half the lifetime for tokens under 4 min, so a short-lived token is still shared.
    return lifetime - min(TOKEN_MARGIN_S, lifetime / 2)


def _object(response: Response) -> dict[str, Any]:
    doc = response.json()
    if not isinstance(doc, dict):
        raise VendorUnavailable("uipath", f"answered {response.status} without a JSON object")
    return doc


def error_of(response: Response) -> tuple[str, str | None] | None:
    """(message, errorCode) of an Orchestrator error (camelCase, or the spec's PascalCase),
    or (error_description/error, None) of Identity's; None if the body is neither."""
    try:
        doc = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    message = (
        doc.get("message") or doc.get("Message") or doc.get("error_description") or doc.get("error")
    )
    if not isinstance(message, str):
        return None
    code = doc.get("errorCode", doc.get("ErrorCode"))
    return message[:300], None if code is None else str(code)
