"""Workato: run a recipe by calling its API Platform endpoint.

"Starting" a recipe in the Developer API only switches its trigger on, so a run is one
call to the recipe's endpoint (vendors.md §4). A short recipe answers with its result;
a long one answers at once and posts our documented callback when it ends. Workato
offers nothing to poll for that call, so `status()` never asks Workato.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from service.clients.base import Response, RunnerApi, RunState, RunStatus
from service.errors import VendorRejected
from service.settings import WorkatoApi

# The recipe's answer (our contract for API recipes, README): a result, or "accepted".
# [U] Workato fixes no vocabulary here, so common synonyms are accepted too.
SYNC_STATUSES: Mapping[str, RunStatus] = {
    "completed": "succeeded",
    "succeeded": "succeeded",
    "success": "succeeded",
    "failed": "failed",
    "error": "failed",
}

# API Platform statuses with a meaning of their own (vendors.md §4 "API Platform", Errors).
# 429 and 502/503/504 keep the base mapping: VendorUnavailable, retry later.
REJECTIONS: Mapping[int, str] = {
    401: "the API-TOKEN was refused (missing, wrong, or its client is disabled)",
    404: "wrong endpoint URL, or the recipe is not running (or its collection/client is disabled)",
    # Workato documents 500 as missing or invalid parameters, not as an outage: retrying
    # the same body cannot succeed.
    500: "the endpoint refused the request's parameters (missing or invalid)",
}

# 422 means the recipe job ran and failed: an answer, not an error of the call.
JOB_FAILED = 422

AWAITING_CALLBACK = "Workato reports completion only by the recipe's callback"


class WorkatoClient(RunnerApi):
    """Call recipes' API Platform endpoints with an access profile's auth token."""

    vendor = "workato"

    def __init__(self, session: aiohttp.ClientSession, settings: WorkatoApi) -> None:
        super().__init__(session, settings.timeout_s)
        self._api_token = settings.api_token

    def __repr__(self) -> str:
        return f"WorkatoClient(timeout_s={self.timeout_s:g})"

    async def start(
        self,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        callback_url: str | None = None,
        callback_secret: str | None = None,
    ) -> RunState:
        """Call the recipe's endpoint; answer its result, or a running state to await."""
        url = endpoint_url(target)
        body = request_body(inputs, correlation_id, callback_url, callback_secret)
        response = await self.call(
            "POST",
            url,
            json=body,
            headers={"API-TOKEN": self._api_token},
            ok=(200, 201, 202, 204, JOB_FAILED),
        )
        if response.status == JOB_FAILED:
            return failed_job(response, correlation_id)
        return answered(response, correlation_id)

    async def status(self, run_id: str, target: Mapping[str, Any]) -> RunState:
        """Answer "running": only the recipe's callback tells that the run ended."""
        # Nothing to ask: an API Platform call creates no job id we can correlate, and the
        # Jobs API (60 req/min) returns no run-time data (vendors.md §4 Developer API).
        return RunState(self.vendor, run_id, "running", detail=AWAITING_CALLBACK)

    def translate(self, where: str, response: Response) -> Exception:
        """API Platform errors with what they mean; others as in the base client."""
        meaning = REJECTIONS.get(response.status)
        if meaning is None:
            return super().translate(where, response)
        text = response.body[:300].decode("utf-8", errors="replace")
        detail = f"{where} answered {response.status}: {meaning}: {text}"
        return VendorRejected(self.vendor, detail, status=response.status)


def endpoint_url(target: Mapping[str, Any]) -> str:
    """The target's endpoint URL, which must be absolute http(s)."""
    url = target.get("endpoint_url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise VendorRejected(
            "workato", "the target needs an 'endpoint_url' such as https://apim.workato.com/..."
        )
    return str(url)


def request_body(
    inputs: Mapping[str, Any],
    correlation_id: str,
    callback_url: str | None,
    callback_secret: str | None,
) -> dict[str, Any]:
    """The body an API recipe receives: inputs, our id, and where to call back."""
    body: dict[str, Any] = {"correlationId": correlation_id, "inputs": dict(inputs)}
    if callback_url:
        callback: dict[str, Any] = {"url": callback_url}
        if callback_secret:
            callback["token"] = callback_secret  # sent back as Authorization: Bearer
        body["callback"] = callback
    return body


def answered(response: Response, correlation_id: str) -> RunState:
    """A 2xx: the recipe's result if it gave one, else a run to await by callback."""
    doc = _json_object(response.body)
    word = str(doc.get("status") or "")
    run_id = _job_id(doc) or correlation_id
    status = SYNC_STATUSES.get(word.lower())
    if status is None:
        # "accepted" / "pending" / "running", an empty body, or a status we do not know:
        # the recipe goes on and calls back [U: no documented async contract].
        return RunState("workato", run_id, "running", word, detail=AWAITING_CALLBACK)
    outputs = doc.get("outputs")
    return RunState(
        "workato",
        run_id,
        status,
        word,
        outputs=outputs if isinstance(outputs, dict) else {},
        detail=_error(doc),
    )


def failed_job(response: Response, correlation_id: str) -> RunState:
    """A 422: the recipe job failed to complete (vendors.md §4 API Platform errors)."""
    doc = _json_object(response.body)
    text = response.body[:300].decode("utf-8", errors="replace") or None
    run_id = _job_id(doc) or correlation_id
    return RunState("workato", run_id, "failed", "failed", detail=_error(doc) or text)


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or {} if it is not one."""
    # The recipe has run or started: an unreadable body must not make the caller retry
    # (and start the recipe twice), so it is tolerated rather than raised.
    try:
        doc = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _job_id(doc: Mapping[str, Any]) -> str | None:
    job_id = doc.get("jobId")
    return None if job_id in (None, "") else str(job_id)


def _error(doc: Mapping[str, Any]) -> str | None:
    error = doc.get("error")
    if error in (None, ""):
        return None
    return error if isinstance(error, str) else orjson.dumps(error).decode()
