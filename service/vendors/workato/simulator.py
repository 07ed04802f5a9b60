"""A simulated Workato: API Platform endpoints, recipe functions and the Developer API's
jobs, behaving as Workato does (vendors.md §4, contracts/workato.json).

- An API recipe (trigger "New API request") runs one job per call, and its "Respond to
  API request" action ends that job: no step after it runs. A "sync" recipe does the
  work, then responds with the result. An "async" recipe calls its recipe function
  asynchronously, handing on our correlationId, inputs and callback, then responds 200
  `{"status": "accepted", "jobId"}`: its job has succeeded, the work has not started.
- The recipe function (trigger "New function call") is a recipe of its own. Its job,
  titled with the correlation id it was given, works for `run_duration_s`; its last
  step POSTs our callback with the bearer token it was given; then the job ends
  succeeded or failed. If the function is stopped, the API recipe's job fails (422).
- The API Platform checks the `api-token` header (or HTTP Basic user "api-token"):
  401 bad token, 404 unknown endpoint or stopped recipe, 422 the recipe job failed,
  500 missing parameters.
- The Developer API lists a recipe's jobs (newest first, `jobs_page_size` a page,
  `offset_job_id`/`prev`, `status`) and gets one by handle (`j-…`); every job field may
  be null. It takes `Authorization: Bearer <API client token>` only and refuses the
  legacy `x-user-email`/`x-user-token` headers (since 2025-07-14); jobs endpoints allow
  `jobs_per_minute` (60) requests, then answer 429 with Retry-After.
Faults (latency, 5xx, 429, hangs, lost answers, dropped callbacks) as in base.py. Never
blocks the loop.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hmac
import itertools
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web

from service.simulators.base import Simulator, json_response

Mode = Literal["sync", "async"]
OUTCOMES = ("completed", "failed")
FAILURE = "Recipe step 2 failed: simulated error"
FUNCTION_STOPPED = "Recipe function is not running"
LEGACY_HEADERS = ("x-user-email", "x-user-token")
FIRST_RECIPE_ID = 1001  # fixed, so a configuration written for the lab fits


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def job_id() -> str:
    """A job handle shaped like Workato's (`j-KGAKfhsz-GYoLe`)."""
    return f"j-{secrets.token_urlsafe(6)}-{secrets.token_urlsafe(3)}"


@dataclass
class Job:
    """One job of a recipe, as the Developer API shows it."""

    handle: str
    recipe_id: int
    flow_run_id: int
    title: str | None
    started_at: str = field(default_factory=now_iso)
    status: str = "pending"  # succeeded | failed | pending
    completed_at: str | None = None
    error: str | None = None
    calling: Job | None = None  # the job that called this one (a recipe function's caller)

    def end(self, outcome: str, error: str | None = None) -> None:
        self.status = "succeeded" if outcome == "completed" else "failed"
        self.completed_at, self.error = now_iso(), error

    def item(self, with_status: bool = True) -> dict[str, Any]:
        """The job in a listing (ListRecipeJobs items[])."""
        ended = self.completed_at is not None
        return {
            "id": self.handle,
            "flow_run_id": self.flow_run_id,
            "completed_at": self.completed_at,
            "started_at": self.started_at,
            "title": self.title,
            "is_poll_error": False,
            "error": self.error,
            "is_error": self.status == "failed" if ended else None,
            "status": self.status if with_status else None,
            "error_parts": None,
            "lines": None,
        }

    def detail(self, with_status: bool = True) -> dict[str, Any]:
        """The job on its own (GetRecipeJob)."""
        calling = self.calling
        return {
            **self.item(with_status),
            "handle": self.handle,
            "recipe_id": self.recipe_id,
            "is_repeat": False,
            "is_test": False,
            "is_test_case_job": None,
            "master_job_id": None,
            "master_job_handle": None,
            "calling_recipe_id": str(calling.recipe_id) if calling else None,
            "calling_job_id": str(calling.flow_run_id) if calling else None,
            "calling_job_handle": calling.handle if calling else None,
        }


@dataclass
class Recipe:
    id: int
    name: str
    running: bool = True
    jobs: list[Job] = field(default_factory=list)  # oldest first


@dataclass
class Endpoint:
    """One API recipe behind an endpoint path, and (async) the function it calls."""

    path: str
    mode: Mode
    recipe: Recipe
    function: Recipe | None = None

    @property
    def running(self) -> bool:
        return self.recipe.running


@dataclass(frozen=True)
class Call:
    """What one accepted endpoint call asked for."""

    correlation_id: str
    inputs: dict[str, Any]
    callback_url: str | None
    callback_token: str | None


class WorkatoSimulator(Simulator):
    """API recipes in one collection, their recipe functions, and the jobs API."""

    name = "workato"

    def __init__(
        self,
        api_token: str = "sim-workato-api-token",
        *,
        developer_token: str = "sim-workato-developer-token",
        prefix: str = "acme",
        collection: str = "bridge",
        run_duration_s: float = 0.2,
    ) -> None:
        super().__init__()
        self._api_token = api_token
        self._developer_token = developer_token
        self.prefix, self.collection = prefix, collection
        self.run_duration_s = run_duration_s
        self.endpoints: dict[str, Endpoint] = {}
        self.recipes: dict[int, Recipe] = {}
        self.calls: list[dict[str, Any]] = []  # every endpoint call, bodies without tokens
        self.callbacks: list[dict[str, Any]] = []  # callback deliveries and drops
        self.jobs_page_size = 100  # [U] Workato's page size is not documented
        self.jobs_per_minute = 60
        self.job_status_field = True  # False: jobs report "status": null (it is nullable)
        self.titles_carry_correlation = True  # False: no job field carries our id
        self._jobs_requests: collections.deque[float] = collections.deque()
        self._outcomes: list[tuple[str, dict[str, Any] | None]] = []
        self._ids = itertools.count(FIRST_RECIPE_ID)
        self._flow_runs = itertools.count(1001)

    # --- control, for tests and the demo -------------------------------------------------

    @property
    def collection_path(self) -> str:
        return f"/{self.prefix}/{self.collection}-v1"

    @property
    def developer_api_url(self) -> str:
        return f"{self.base_url}/api"

    def add_endpoint(self, path: str, mode: Mode = "async") -> str:
        """Publish a running API recipe at `path` (async: with its recipe function);
        answer its full URL (after serve())."""
        if mode not in ("sync", "async"):
            raise ValueError("mode must be 'sync' or 'async'")
        path = path.strip("/")
        recipe = self._recipe(f"API: {path}")
        function = self._recipe(f"Function: {path}") if mode == "async" else None
        self.endpoints[path] = Endpoint(path, mode, recipe, function)
        return f"{self.base_url}{self.collection_path}/{path}"

    def function_id(self, path: str) -> int:
        """The recipe id of the function an async endpoint calls: the one to poll."""
        function = self.endpoints[path.strip("/")].function
        if function is None:
            raise ValueError(f"{path} is a sync endpoint: it calls no recipe function")
        return function.id

    def stop_recipe(self, path: str) -> None:
        """Stop the API recipe behind `path`: its endpoint answers 404."""
        self.endpoints[path.strip("/")].recipe.running = False

    def start_recipe(self, path: str) -> None:
        self.endpoints[path.strip("/")].recipe.running = True

    def stop_function(self, path: str) -> None:
        """Stop the recipe function `path` calls: its API recipe's jobs fail."""
        function = self.endpoints[path.strip("/")].function
        assert function is not None, "a sync endpoint has no function"
        function.running = False

    def next_outcome(self, outcome: str, outputs: dict[str, Any] | None = None) -> None:
        """End the next called recipe job as `completed` or `failed`."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self._outcomes.append((outcome, outputs))

    def jobs_of(self, recipe_id: int) -> list[Job]:
        return list(self.recipes[recipe_id].jobs)

    def state(self) -> dict[str, Any]:
        endpoints = {
            p: {"mode": e.mode, "running": e.running, "recipe_id": e.recipe.id,
                "function_id": e.function.id if e.function else None}
            for p, e in self.endpoints.items()
        }  # fmt: skip
        recipes = {
            r.id: {"name": r.name, "running": r.running, "jobs": [j.detail() for j in r.jobs]}
            for r in self.recipes.values()
        }
        return {"endpoints": endpoints, "recipes": recipes, "calls": self.calls,
                "callbacks": self.callbacks}  # fmt: skip

    def _recipe(self, name: str) -> Recipe:
        recipe = Recipe(next(self._ids), name)
        self.recipes[recipe.id] = recipe
        return recipe

    def _job(self, recipe: Recipe, title: str | None, calling: Job | None = None) -> Job:
        job = Job(job_id(), recipe.id, next(self._flow_runs), title, calling=calling)
        recipe.jobs.append(job)
        return job

    # --- routes ----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.collection_path}/{{path:.+}}", self._call)
        app.router.add_get("/api/recipes/{recipe_id}/jobs", self._list_jobs)
        app.router.add_get("/api/recipes/{recipe_id}/jobs/{handle}", self._get_job)

    # --- API Platform ----------------------------------------------------------------------

    async def _call(self, request: web.Request) -> web.Response:
        if not self._api_token_ok(request):
            return json_response({"message": "Unauthorized"}, 401)
        endpoint = self.endpoints.get(request.match_info["path"].strip("/"))
        if endpoint is None or not endpoint.running:
            return json_response({"message": "Not found"}, 404)
        call = _parse_call(await request.read())
        self._record(endpoint, call)
        if call is None:
            return json_response({"message": "Missing or invalid parameters"}, 500)
        job = self._job(endpoint.recipe, f"New API request: POST /{endpoint.path}")
        if endpoint.function is None:
            return self._run_sync(job, call)
        return self._hand_over(job, endpoint.function, call)

    def _api_token_ok(self, request: web.Request) -> bool:
        """The `api-token` header, or HTTP Basic with user "api-token" (any case)."""
        given = request.headers.get("api-token", "")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if not given and scheme.lower() == "basic":
            try:
                user, _, given = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return False
            given = given if user == "api-token" else ""
        return bool(given) and hmac.compare_digest(given.encode(), self._api_token.encode())

    def _run_sync(self, job: Job, call: Call) -> web.Response:
        """Do the work in this job, respond with the result: the job ends."""
        outcome, outputs = self._decide(call)
        job.end(outcome, FAILURE if outcome == "failed" else None)
        return _sync_answer(job.handle, outcome, outputs)

    def _hand_over(self, job: Job, function: Recipe, call: Call) -> web.Response:
        """Call the recipe function asynchronously, then respond "accepted": the job ends,
        succeeded, and nothing after the response runs in it."""
        if not function.running:
            job.end("failed", FUNCTION_STOPPED)
            return json_response({"status": "failed", "jobId": job.handle,
                                  "error": FUNCTION_STOPPED}, 422)  # fmt: skip
        title = f"New function call: {call.correlation_id}"
        work = self._job(function, title if self.titles_carry_correlation else None, job)
        self.spawn(self._function(work, call, *self._decide(call)))
        job.end("completed")
        return json_response(
            {"status": "accepted", "jobId": job.handle}
        )  # 200: the one success status the contract lists

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

    # --- the recipe function ---------------------------------------------------------------

    async def _function(self, job: Job, call: Call, outcome: str, outputs: dict[str, Any]) -> None:
        """Do the work, POST the callback (its last step), end the job."""
        await asyncio.sleep(self.run_duration_s)  # the work, simulated
        record: dict[str, Any] = {"jobId": job.handle, "correlationId": call.correlation_id}
        if not call.callback_url:
            self.callbacks.append({**record, "outcome": "no-callback"})
        elif self.faults.drop_callbacks:
            self.callbacks.append({**record, "outcome": "dropped"})
        else:
            status = await self._post_callback(job.handle, call, outcome, outputs)
            self.callbacks.append({**record, "status": status, "outcome": "sent"})
        job.end(outcome, FAILURE if outcome == "failed" else None)

    async def _post_callback(
        self, handle: str, call: Call, outcome: str, outputs: dict[str, Any]
    ) -> int | None:
        """POST the function's last HTTP step: our documented callback body (README)."""
        assert call.callback_url is not None
        body = callback_body(handle, call, outcome, outputs)
        headers = {"Content-Type": "application/json", "webhook-id": f"workato-{handle}"}
        if call.callback_token:
            headers["Authorization"] = f"Bearer {call.callback_token}"
        return await self.post(call.callback_url, body, headers)

    # --- Developer API: jobs ---------------------------------------------------------------

    async def _list_jobs(self, request: web.Request) -> web.Response:
        refused = self._developer_refusal(request)
        if refused is not None:
            return refused
        recipe = self.recipes.get(_int(request.match_info["recipe_id"]))
        if recipe is None:
            return json_response({"message": "Not found"}, 404)
        jobs = _page(recipe.jobs[::-1], request.query, self.jobs_page_size)
        succeeded = sum(j.status == "succeeded" for j in recipe.jobs)
        failed = sum(j.status == "failed" for j in recipe.jobs)
        return json_response({
            "job_succeeded_count": succeeded, "job_failed_count": failed,
            "job_count": len(recipe.jobs), "job_scope_count": len(recipe.jobs),
            "items": [job.item(self.job_status_field) for job in jobs],
        })  # fmt: skip

    async def _get_job(self, request: web.Request) -> web.Response:
        refused = self._developer_refusal(request)
        if refused is not None:
            return refused
        recipe = self.recipes.get(_int(request.match_info["recipe_id"]))
        handle = request.match_info["handle"]
        job = next((j for j in recipe.jobs if j.handle == handle), None) if recipe else None
        if job is None:
            return json_response({"message": "Not found"}, 404)
        return json_response(job.detail(self.job_status_field))

    def _developer_refusal(self, request: web.Request) -> web.Response | None:
        """401 for anything but the API client's bearer token; 429 past the jobs limit."""
        if any(name in request.headers for name in LEGACY_HEADERS):
            return json_response({"message": "Authentication with x-user-email and "
                                  "x-user-token is no longer supported: use an API client "
                                  "token (Authorization: Bearer)"}, 401)  # fmt: skip
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and bool(token)
        if not ok or not hmac.compare_digest(token.encode(), self._developer_token.encode()):
            return json_response({"message": "Unauthorized"}, 401)
        wait = self._jobs_rate_wait()
        if wait:
            return json_response({"message": "Too many requests"}, 429,
                                 {"Retry-After": str(wait)})  # fmt: skip
        return None

    def _jobs_rate_wait(self) -> int:
        """Seconds to wait if this request is over the per-minute limit, else 0 (counted)."""
        now = time.monotonic()
        window = self._jobs_requests
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.jobs_per_minute:
            return max(1, math.ceil(window[0] + 60 - now))
        window.append(now)
        return 0


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


def _page(newest_first: list[Job], query: Any, size: int) -> list[Job]:
    """One page: `status` filter; after `offset_job_id` (older), or before it with prev."""
    jobs = newest_first
    wanted = query.get("status")
    if wanted:
        jobs = [job for job in jobs if job.status == wanted]
    offset = query.get("offset_job_id")
    index = next((i for i, job in enumerate(jobs) if job.handle == offset), None)
    if index is not None and query.get("prev") == "true":
        return jobs[max(0, index - size) : index]
    if index is not None:
        jobs = jobs[index + 1 :]
    return jobs[:size]


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


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
