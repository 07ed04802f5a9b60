"""Workato's Developer API, jobs only: find the job of a recipe that carries our run.

An API Platform call creates no job id we are told about, and the jobs API returns no
run-time data (contracts/workato.json, ListRecipeJobs). What it does return is each job's
`title`, which Workato builds from the trigger's data: the recipe function our API recipe
calls is given our `correlationId`, so its job is the one whose fields carry that id
[U: the contract names the title as the place; every field of a job may be null, so
the whole item is searched]. Jobs endpoints allow 60 requests a minute: a job once found
is re-read by its handle (one request), and a listing reads at most `MAX_PAGES` pages.

    GET {developer_api_url}/recipes/{recipe_id}/jobs[?offset_job_id=<handle>]  newest first
    GET {developer_api_url}/recipes/{recipe_id}/jobs/{handle}
    Authorization: Bearer <API client token>   (x-user-email/x-user-token: refused)
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from service.clients.base import HttpApi, Response
from service.errors import VendorRejected
from service.runs import RunState, RunStatus
from service.vendors.workato.settings import WorkatoApi

# A busy recipe may have many jobs newer than ours; ours is usually on the first page,
# and a run not found stays running until its deadline.
MAX_PAGES = 3
KNOWN_HANDLES = 1024  # jobs remembered by correlation id, so a poll costs one request
DETAIL_CHARS = 500
HANDLE = re.compile(r"[A-Za-z0-9_-]{1,100}")

# Job statuses: the list filter documents succeeded | failed | pending [C]; the full set a
# job reports is unverified [U], so common synonyms are read too and the rest is inferred.
JOB_STATUSES: Mapping[str, RunStatus] = {
    "succeeded": "succeeded",
    "completed": "succeeded",
    "success": "succeeded",
    "failed": "failed",
    "error": "failed",
    "errored": "failed",
    "pending": "running",
    "running": "running",
    "processing": "running",
    "queued": "running",
}

REJECTIONS: Mapping[int, str] = {
    401: "the Developer API token was refused (a wrong or revoked API client token; "
    "the legacy x-user-email/x-user-token keys no longer work)",
    403: "the API client's role may not read this recipe's jobs (grant it Jobs access "
    "in the recipe's project)",
    404: "no such recipe or job, or the recipe is outside the API client's projects",
}


class WorkatoJobs(HttpApi):
    """Read a recipe's jobs with an API client's token."""

    vendor = "workato"

    def __init__(self, session: aiohttp.ClientSession, settings: WorkatoApi) -> None:
        super().__init__(session, settings.timeout_s)
        self.base_url = URL(settings.developer_api_url.rstrip("/"))
        self._headers = {"Authorization": f"Bearer {settings.developer_api_token}"}
        self._handles: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"WorkatoJobs(base_url={str(self.base_url)!r})"

    async def find(self, recipe_id: int, correlation_id: str) -> Mapping[str, Any] | None:
        """The newest job of the recipe carrying `correlation_id`, or None if none does."""
        job = await self._known(recipe_id, correlation_id)
        if job is None:
            job = await self._search(recipe_id, correlation_id)
        self._remember(correlation_id, job)
        return job

    async def job(self, recipe_id: int, handle: str) -> Mapping[str, Any]:
        """One job by its handle (`j-…`)."""
        url = self.base_url / "recipes" / str(recipe_id) / "jobs" / handle
        response = await self.call("GET", url, headers=self._headers, ok=(200,))
        doc = _json_object(response)
        return {**doc, "id": doc.get("id") or doc.get("handle") or handle}

    async def _known(self, recipe_id: int, correlation_id: str) -> Mapping[str, Any] | None:
        """The job found by an earlier poll, re-read by its handle; None if there is none."""
        handle = self._handles.get(correlation_id)
        if handle is None:
            return None
        try:
            return await self.job(recipe_id, handle)
        except VendorRejected as exc:
            if exc.status != 404:
                raise
            return None  # gone from the job history meanwhile: search again

    async def _search(self, recipe_id: int, correlation_id: str) -> Mapping[str, Any] | None:
        async for item in self._items(recipe_id):
            if carries(item, correlation_id):
                return item
        return None

    async def _items(self, recipe_id: int) -> AsyncIterator[Mapping[str, Any]]:
        """The recipe's jobs, newest first, over at most MAX_PAGES pages."""
        url = self.base_url / "recipes" / str(recipe_id) / "jobs"
        params: dict[str, str] = {}
        for _ in range(MAX_PAGES):
            response = await self.call("GET", url, params=params, headers=self._headers, ok=(200,))
            items = _items(_json_object(response))
            for item in items:
                yield item
            last = items[-1].get("id") if items else None
            if not isinstance(last, str) or not last:
                return
            params = {"offset_job_id": last}  # prev=false (default): the older jobs

    def _remember(self, correlation_id: str, job: Mapping[str, Any] | None) -> None:
        """Keep the handle of a job still running; forget it once the job has ended."""
        handle = job.get("id") if job is not None else None
        if job is None or not _is_handle(handle) or job_status(job) != "running":
            self._handles.pop(correlation_id, None)
            return
        self._handles[correlation_id] = str(handle)
        self._handles.move_to_end(correlation_id)
        while len(self._handles) > KNOWN_HANDLES:
            self._handles.popitem(last=False)

    def translate(self, where: str, response: Response) -> Exception:
        """Developer API errors with what to do; 429 and 5xx as in the base client."""
        meaning = REJECTIONS.get(response.status)
        if meaning is None:
            return super().translate(where, response)
        text = response.body[:300].decode("utf-8", errors="replace")
        detail = f"{where} answered {response.status}: {meaning}: {text}"
        return VendorRejected(self.vendor, detail, status=response.status)


def carries(job: Mapping[str, Any], correlation_id: str) -> bool:
    """Whether a job's fields (its title first) carry our correlation id."""
    title = job.get("title")
    if isinstance(title, str) and correlation_id in title:
        return True
    # [U] where a tenant's job shows the id is not fixed: any field of the item will do
    # (a UUID does not occur by chance).
    return correlation_id in _text(job)


def job_status(job: Mapping[str, Any]) -> RunStatus:
    """A job's status as ours: its `status` word, else inferred from its other fields."""
    word = job.get("status")
    status = JOB_STATUSES.get(word.lower()) if isinstance(word, str) else None
    if status is not None:
        return status
    if not job.get("completed_at"):
        return "running"  # pending, or a status we do not know, while it has not ended
    return "failed" if job.get("is_error") or job.get("error") else "succeeded"


def job_run_state(job: Mapping[str, Any], run_id: str) -> RunState:
    """Our run's state from its job (every field may be null)."""
    status = job_status(job)
    word = job.get("status")
    vendor_state = word if isinstance(word, str) and word else status
    handle = job.get("id") or job.get("handle")
    detail = f"Workato job {_text(handle)[:100]}" if handle else None
    error = job.get("error")
    if status == "failed" and error:
        detail = f"{detail}: {_text(error)}" if detail else _text(error)
    return RunState("workato", run_id, status, vendor_state[:50], detail=_short(detail))


def _short(text: str | None) -> str | None:
    """At most DETAIL_CHARS: the detail ends up in a Fact Sheet comment."""
    if text is None or len(text) <= DETAIL_CHARS:
        return text
    return text[: DETAIL_CHARS - 1] + "…"


def _text(value: Any) -> str:
    """A value as text; one too deeply nested to encode is its kind only."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        return f"<{type(value).__name__} nested too deeply>"


def _is_handle(value: Any) -> bool:
    """A job handle (`j-KGAKfhsz-GYoLe`; old ids were numbers) safe to put in a URL path."""
    return isinstance(value, str) and HANDLE.fullmatch(value) is not None


def _json_object(response: Response) -> dict[str, Any]:
    doc = response.json()
    return doc if isinstance(doc, dict) else {}


def _items(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = doc.get("items")
    found = [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []
    return [
        {**item, "id": str(item["id"])} if item.get("id") is not None else item for item in found
    ]
