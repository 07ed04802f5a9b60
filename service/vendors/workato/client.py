"""Workato: run a recipe by calling its API Platform endpoint; learn its end by callback,
by polling its recipe function's jobs, or by its deadline.

"Starting" a recipe in the Developer API only switches its trigger on, so a run is one
call to an API recipe's endpoint (vendors.md §4). Its "Respond to API request" action
ends its job: a short recipe does the work and answers the result; a long one first
calls a recipe function asynchronously (handing on our correlationId and callback), and
answers "accepted". The function does the work and posts our callback. Completion then
comes from that callback or, when the rule names the function's `recipe_id` and a
Developer API token is configured, from its job, found by our correlation id
(jobs.py). A run neither reports is timed out after `run_deadline_s`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from service.clients.base import Response, RunnerApi
from service.errors import VendorRejected
from service.runs import RunState, RunStatus
from service.vendors.workato.jobs import WorkatoJobs, job_run_state
from service.vendors.workato.settings import WorkatoApi

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
# 429 and 5xx keep the base mapping: VendorUnavailable, retry later.
REJECTIONS: Mapping[int, str] = {
    401: "the API-TOKEN was refused (missing, wrong, or its client is disabled)",
    404: "wrong endpoint URL, or the recipe is not running (or its collection/client is disabled)",
}
# Workato's 2020 docs give 500 for missing or invalid parameters, but a 500 is also what
# a real server fault answers; only a body that says so makes it permanent [U: its body
# is not specified, so its words are looked for].
BAD_PARAMETERS = re.compile(rb"\bparam(?:eter)?s?\b|\bvalidation\b", re.IGNORECASE)

# 422 means the recipe job ran and failed: an answer, not an error of the call.
JOB_FAILED = 422

AWAITING_CALLBACK = "awaiting the recipe function's callback (no recipe_id to poll)"
NOT_POLLABLE = (
    "the rule names recipe_id {recipe_id}, but no Developer API token is configured to "
    "poll its jobs: set clients.workato.developer_api_token ($WORKATO_DEVELOPER_API_TOKEN)"
)


class WorkatoClient(RunnerApi):
    """Call recipes' API Platform endpoints with an access profile's auth token."""

    vendor = "workato"

    def __init__(self, session: aiohttp.ClientSession, settings: WorkatoApi) -> None:
        super().__init__(session, settings.timeout_s)
        self._api_token = settings.api_token
        self.run_deadline_s = settings.run_deadline_s
        self.jobs = WorkatoJobs(session, settings) if settings.developer_api_token else None

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
        """The state of the job of the target's `recipe_id` carrying our correlation id
        (a running run's id); without a recipe_id, "running": only the callback tells."""
        recipe_id = target.get("recipe_id")
        if recipe_id is None:
            return RunState(self.vendor, run_id, "running", detail=AWAITING_CALLBACK)
        if self.jobs is None:
            raise VendorRejected(self.vendor, NOT_POLLABLE.format(recipe_id=recipe_id))
        job = await self.jobs.find(int(recipe_id), run_id)
        if job is None:
            detail = f"no job of recipe {recipe_id} carries correlation id {run_id} yet"
            return RunState(self.vendor, run_id, "running", detail=detail)
        return job_run_state(job, run_id)

    def translate(self, where: str, response: Response) -> Exception:
        """API Platform errors with what they mean; others as in the base client."""
        meaning = REJECTIONS.get(response.status)
        if response.status >= 500 and BAD_PARAMETERS.search(response.body[:2000]):
            meaning = "the endpoint refused the request's parameters (missing or invalid)"
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
    """A 2xx: the recipe's result if it gave one, else a run to await."""
    doc = _json_object(response.body)
    word = str(doc.get("status") or "")
    status = SYNC_STATUSES.get(word.lower())
    if status is None:
        # "accepted" / "pending" / "running", an empty body, or a status we do not know:
        # the API recipe's job has ended, its recipe function goes on. The run is known by
        # our correlation id, which that function's job and its callback carry: the
        # answering job's id names a job that is already over.
        job = _job_id(doc)
        detail = f"{AWAITING_CALLBACK} (accepted by job {job})" if job else AWAITING_CALLBACK
        return RunState("workato", correlation_id, "running", word, detail=detail)
    run_id = _job_id(doc) or correlation_id
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
