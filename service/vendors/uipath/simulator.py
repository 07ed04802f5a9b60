"""A simulated UiPath Automation Cloud: Identity's client-credentials token endpoint and an
Orchestrator tenant that runs jobs and sends signed webhooks (vendors.md §3).

Faithful where our client depends on it: bearer tokens that expire, the folder header,
`InputArguments` as a JSON string, 404 + errorCode 1002 for an unknown release, jobs that
go Pending → Running → Successful | Faulted | Stopped on the event loop, `OutputArguments`
as a string in REST and an object in webhooks, the job's error as `JobError` in REST and
`Error` in webhooks, webhook jobs without `Reference`, StartJobs refusals as UiPath's SDK
reads them (404/1002 unknown release, 400/1100 unknown folder, 409 nobody can run it),
and the circuit breaker that turns a webhook off for an hour after one failed delivery.
With `granted_scopes` set it checks scopes as an external application's would be: a
token asking for one more is refused (`invalid_scope`), and each call needs one of its
operation's scopes.
Held to ../shared/contracts/uipath.json by tests/contracts. It must never block the loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from service.simulators.base import Simulator, json_response
from service.vendors.uipath import simulator_webhooks

IDENTITY_PATH = "/identity_/connect/token"
FOLDER_HEADER = "X-UIPATH-OrganizationUnitId"
SIGNATURE_HEADER = "X-UiPath-Signature"
OUTCOMES = ("Successful", "Faulted", "Stopped")
# The application scopes each operation takes, any one of them (../shared/contracts/uipath.json).
JOBS_WRITE = ("OR.Jobs", "OR.Jobs.Write")
JOBS_READ = ("OR.Jobs", "OR.Jobs.Read")
WEBHOOKS_WRITE = ("OR.Webhooks", "OR.Webhooks.Write")
WEBHOOKS_READ = ("OR.Webhooks", "OR.Webhooks.Read")
EVENT_TYPES = {"Successful": "job.completed", "Faulted": "job.faulted", "Stopped": "job.stopped"}
INFO = {
    "Successful": "Job completed",
    "Faulted": "System.Exception: the process threw (simulated failure)",
    "Stopped": "Job stopped by user",
}
ROBOT = {"Id": 4778, "Name": "SimBot", "MachineName": "SIM-HOST"}
_REFUSALS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    501: web.HTTPNotImplemented,
}
WEBHOOK_REQUIRED = {  # CreateWebhook's required fields and their JSON types
    "Name": str,
    "Url": str,
    "Enabled": bool,
    "SubscribeToAllEvents": bool,
    "AllowInsecureSsl": bool,
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def refuse(status: int, message: str, code: int | None = None) -> web.HTTPException:
    """An Orchestrator error answer: `{"message", "errorCode", "traceId"}` (no errorCode
    when the error has none)."""
    doc: dict[str, Any] = {"message": message, "traceId": uuid.uuid4().hex}
    if code is not None:
        doc["errorCode"] = code
    return _REFUSALS[status](text=orjson.dumps(doc).decode(), content_type="application/json")


def sign(secret: str, body: bytes) -> str:
    """Base64 of HMAC-SHA256 over the raw body, keyed with the UTF-8 secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class SimJob:
    """One job as Orchestrator keeps it."""

    id: int
    release: dict[str, Any]
    folder: int
    input_arguments: str | None
    reference: str | None
    outcome: str
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "Pending"
    info: str | None = None
    outputs: dict[str, Any] | None = None
    creation_time: str = field(default_factory=now_iso)
    start_time: str | None = None
    end_time: str | None = None

    def common(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Key": self.key,
            "State": self.state,
            "Info": self.info,
            "StartTime": self.start_time,
            "EndTime": self.end_time,
        }

    def error(self) -> dict[str, Any] | None:
        """The JobErrorDto of a faulted job."""
        if self.state != "Faulted":
            return None
        return {
            "code": "Robot.Exception",
            "title": "The process threw",
            "detail": self.info,
            "category": "User",
            "status": 0,
            "timestamp": self.end_time,
        }

    def dto(self) -> dict[str, Any]:
        """The REST JobDto: OutputArguments is a JSON string, the error is JobError."""
        outputs = None if self.outputs is None else orjson.dumps(self.outputs).decode()
        return {
            **self.common(),
            "JobError": self.error(),
            "ReleaseName": self.release["Name"],
            "InputArguments": self.input_arguments,
            "OutputArguments": outputs,
            "Reference": self.reference,
            "CreationTime": self.creation_time,
            "OrganizationUnitId": self.folder,
            "HostMachineName": ROBOT["MachineName"],
        }

    def event_job(self) -> dict[str, Any]:
        """The job inside a webhook: OutputArguments is an object, the error is Error, and
        there is no Reference (SimpleJobEventDto has none)."""
        return {
            **self.common(),
            "Error": self.error(),
            "OutputArguments": self.outputs,
            "Robot": ROBOT,
            "Release": self.release,
        }


@dataclass
class Webhook:
    """A tenant webhook; `events` empty means all events."""

    id: int
    url: str
    secret: str | None = field(repr=False)
    events: frozenset[str] = frozenset()
    enabled: bool = True
    name: str = "bridge"
    allow_insecure_ssl: bool = False
    open_until: float = 0.0  # circuit breaker: skip events until this monotonic time
    key: str = field(default_factory=lambda: str(uuid.uuid4()))

    def dto(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Key": self.key,
            "Name": self.name,
            "Url": self.url,
            "Enabled": self.enabled,
            "AllowInsecureSsl": self.allow_insecure_ssl,
            "SubscribeToAllEvents": not self.events,
            "Events": [{"EventType": e} for e in sorted(self.events)],
        }

    def skip_reason(self, event_type: str, now: float) -> str | None:
        """Why this event is not sent to this webhook, or None to send it."""
        if self.events and event_type not in self.events:
            return "not-subscribed"
        if not self.enabled:
            return "disabled"
        if now < self.open_until:
            return "circuit-open"
        return None


class UipathSimulator(Simulator):
    """Identity + one Orchestrator tenant under `/{org}/{tenant}/orchestrator_`."""

    name = "uipath"

    def __init__(
        self,
        org: str = "acme",
        tenant: str = "default",
        *,
        client_id: str = "sim-client",
        client_secret: str = "sim-client-secret",
        folders: Iterable[int] = (1,),
        expires_in: int = 3600,
        run_duration_s: float = 0.2,
        disable_for_s: float = 3600.0,
        tenant_id: int = 1,
    ) -> None:
        super().__init__()
        self.org, self.tenant, self.tenant_id = org, tenant, tenant_id
        self.client_id, self._client_secret = client_id, client_secret
        self.folders = set(folders)
        self.expires_in = expires_in  # seconds; 0 issues tokens that are already expired
        self.run_duration_s = run_duration_s  # Pending -> Running at half, the end at full
        self.disable_for_s = disable_for_s  # circuit breaker after a failed delivery
        self.tokens: dict[str, float] = {}  # access token -> monotonic expiry
        # The external application's application scopes: Identity refuses a token asking
        # for more, and each call needs one of its scopes. None: any scope, never checked.
        self.granted_scopes: frozenset[str] | None = None
        self.token_scopes: dict[str, frozenset[str]] = {}  # access token -> its scopes
        self.token_requests: list[dict[str, str]] = []  # forms, without the secret
        self.releases: dict[str, dict[str, Any]] = {}
        self.unrunnable: set[str] = set()  # release keys nobody in the folder can run
        self.jobs: dict[int, SimJob] = {}
        self.starts: list[dict[str, Any]] = []  # StartJobs requests as received
        self.webhooks: list[Webhook] = []
        self.deliveries: list[dict[str, Any]] = []
        self._outcomes: list[tuple[str, dict[str, Any] | None]] = []
        self._ids = itertools.count(148712)

    # --- control, for tests and the demo -------------------------------------------------

    @property
    def orchestrator_url(self) -> str:
        return f"{self.base_url}/{self.org}/{self.tenant}/orchestrator_"

    @property
    def identity_url(self) -> str:
        return f"{self.base_url}{IDENTITY_PATH}"

    def add_release(
        self, key: str | None = None, process_key: str = "Sim_Process", *, runnable: bool = True
    ) -> str:
        """Publish a process; answer its release key. A release that is not `runnable` has
        no unattended robot or user in its folder: StartJobs answers 409."""
        key = key or str(uuid.uuid4())
        release_id = next(self._ids)
        self.releases[key] = {
            "Id": release_id,
            "Key": key,
            "ProcessKey": process_key,
            "Name": process_key,
        }
        if not runnable:
            self.unrunnable.add(key)
        return key

    def next_outcome(self, state: str, outputs: dict[str, Any] | None = None) -> None:
        """End the next started job in `state` (Successful, Faulted or Stopped)."""
        if state not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        self._outcomes.append((state, outputs))

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the next API call answers 401."""
        self.tokens.clear()

    def configure_webhook(
        self, url: str, secret: str | None = None, events: Iterable[str] = (), name: str = "bridge"
    ) -> Webhook:
        """Add an enabled tenant webhook, as the Orchestrator UI would."""
        hook = Webhook(next(self._ids), url, secret, frozenset(events), name=name)
        self.webhooks.append(hook)
        return hook

    def disable_webhook(self) -> None:
        """Disable every webhook, so completion is learned only by polling."""
        for hook in self.webhooks:
            hook.enabled = False

    def state(self) -> dict[str, Any]:
        return {
            "tokens_issued": len(self.token_requests),
            "token_requests": self.token_requests,
            "starts": self.starts,
            "jobs": [job.dto() for job in self.jobs.values()],
            "webhooks": [hook.dto() for hook in self.webhooks],
            "deliveries": self.deliveries,
        }

    # --- routes ----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        base = f"/{self.org}/{self.tenant}/orchestrator_/odata"
        app.router.add_post(IDENTITY_PATH, self._token)
        app.router.add_post(
            f"{base}/Jobs/UiPath.Server.Configuration.OData.StartJobs", self._start_jobs
        )
        app.router.add_get(f"{base}/Jobs({{id}})", self._get_job)
        app.router.add_get(f"{base}/Jobs", self._list_jobs)
        app.router.add_get(f"{base}/Webhooks", self._list_webhooks)
        app.router.add_post(f"{base}/Webhooks", self._add_webhook)
        simulator_webhooks.add_routes(self, app, base)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests.append({k: str(v) for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id:
            return json_response({"error": "invalid_client"}, 400)
        given = str(form.get("client_secret", "")).encode()
        if not hmac.compare_digest(given, self._client_secret.encode()):
            return json_response({"error": "invalid_client"}, 401)
        asked = frozenset(str(form.get("scope", "")).split())
        if self.granted_scopes is not None and not asked <= self.granted_scopes:
            return json_response({"error": "invalid_scope"}, 400)  # the whole request fails
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.expires_in
        self.token_scopes[token] = asked
        doc = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        return json_response({**doc, "scope": str(form.get("scope", ""))})

    async def _start_jobs(self, request: web.Request) -> web.Response:
        self._authorize(request, JOBS_WRITE)
        folder = self._folder(request)
        info = await _start_info(request)
        release = self.releases.get(str(info.get("ReleaseKey")))
        if release is None:
            raise refuse(404, "AssociatedProcessNotFound", 1002)  # the message UiPath's SDK reads
        if release["Key"] in self.unrunnable:
            raise refuse(409, "No unattended robot or user can run this process in the folder.")
        arguments = _input_arguments(info.get("InputArguments"))
        self.starts.append({"folder": folder, "startInfo": info})
        counted = info.get("Strategy") in ("JobsCount", "ModernJobsCount")
        count = _count(info.get("JobsCount")) if counted else 1
        jobs = [self._create(release, folder, info, arguments) for _ in range(count)]
        value = [job.dto() for job in jobs]
        return json_response({"@odata.context": "$metadata#Jobs", "value": value}, 201)

    async def _get_job(self, request: web.Request) -> web.Response:
        self._authorize(request, JOBS_READ)
        folder = self._folder(request)
        raw = request.match_info["id"]
        job = self.jobs.get(int(raw)) if raw.isdigit() else None
        if job is None or job.folder != folder:
            raise refuse(404, "Job does not exist.", 1002)
        return json_response({"@odata.context": "$metadata#Jobs/$entity", **job.dto()})

    async def _list_jobs(self, request: web.Request) -> web.Response:
        """GET /odata/Jobs with the OData options the client uses: one `eq` $filter on
        Reference or Key, $orderby Id, $top (at most 1000). Others answer 400 here."""
        self._authorize(request, JOBS_READ)
        folder = self._folder(request)
        field_name, value = _equality(request.query.get("$filter"))
        jobs = [j for j in self.jobs.values() if j.folder == folder]
        if field_name is not None:
            jobs = [j for j in jobs if j.dto()[field_name] == value]
        jobs.sort(key=lambda j: j.id, reverse=request.query.get("$orderby") == "Id desc")
        top = request.query.get("$top", "1000")
        if not top.isdigit() or int(top) > 1000:
            raise refuse(400, "The limit of 1000 for Top query has been exceeded.")
        found = [job.dto() for job in jobs[: int(top)]]
        return json_response({"@odata.context": "$metadata#Jobs", "value": found})

    async def _list_webhooks(self, request: web.Request) -> web.Response:
        self._authorize(request, WEBHOOKS_READ)
        return json_response({"value": [hook.dto() for hook in self.webhooks]})

    async def _add_webhook(self, request: web.Request) -> web.Response:
        self._authorize(request, WEBHOOKS_WRITE)
        doc = await self.webhook_body(request)
        hook = self.configure_webhook(doc["Url"])
        self.update_webhook(hook, doc)
        return json_response(hook.dto(), 201)

    async def webhook_body(self, request: web.Request) -> dict[str, Any]:
        """A CreateWebhook / UpdateWebhook body, validated."""
        return _webhook_body(await _json_object(request))

    def update_webhook(self, hook: Webhook, doc: dict[str, Any]) -> None:
        """Set a webhook from a validated body."""
        hook.url, hook.name, hook.secret = doc["Url"], doc["Name"], doc.get("Secret") or None
        hook.events = frozenset(str(e["EventType"]) for e in doc.get("Events") or [])
        hook.enabled, hook.allow_insecure_ssl = doc["Enabled"], doc["AllowInsecureSsl"]

    def authorize_webhooks(self, request: web.Request, write: bool) -> None:
        self._authorize(request, WEBHOOKS_WRITE if write else WEBHOOKS_READ)

    # --- checks ----------------------------------------------------------------------------

    def _authorize(self, request: web.Request, any_of: tuple[str, ...]) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or time.monotonic() >= expiry:
            raise refuse(401, "You are not authenticated!", 0)
        scopes = self.token_scopes.get(token.strip(), frozenset())
        if self.granted_scopes is not None and not scopes & set(any_of):
            raise refuse(403, f"The token has none of the scopes {' '.join(any_of)}.", 0)

    def _folder(self, request: web.Request) -> int:
        raw = request.headers.get(FOLDER_HEADER, "").strip()
        if not raw:
            raise refuse(400, "A folder is required for this action.", 1101)
        if not raw.isdigit():
            raise refuse(400, f"{FOLDER_HEADER} must be a folder Id (an integer).")
        if int(raw) not in self.folders:
            message = "Folder does not exist or the user does not have access to the folder."
            raise refuse(400, message, 1100)  # as UiPath's SDK reads it
        return int(raw)

    # --- jobs and webhooks -----------------------------------------------------------------

    def _create(
        self,
        release: dict[str, Any],
        folder: int,
        info: dict[str, Any],
        arguments: dict[str, Any],
    ) -> SimJob:
        outcome, outputs = self._decide(arguments)
        job = SimJob(
            next(self._ids),
            release,
            folder,
            info.get("InputArguments"),
            info.get("Reference"),
            outcome,
        )
        self.jobs[job.id] = job
        self.spawn(self._run(job, outputs))
        return job

    def _decide(self, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The outcome and outputs of a new job: queued by a test, else forceFail, else success."""
        if self._outcomes:
            state, outputs = self._outcomes.pop(0)
        else:
            failing = arguments.get("forceFail") is True
            state, outputs = ("Faulted" if failing else "Successful"), None
        return state, outputs if outputs is not None else {"echo": arguments}

    async def _run(self, job: SimJob, outputs: dict[str, Any]) -> None:
        await asyncio.sleep(self.run_duration_s / 2)
        job.state, job.start_time = "Running", now_iso()
        await asyncio.sleep(self.run_duration_s / 2)
        job.state, job.end_time, job.info = job.outcome, now_iso(), INFO[job.outcome]
        job.outputs = outputs if job.outcome == "Successful" else None
        self._notify(job)

    def _notify(self, job: SimJob) -> None:
        """Send the job's terminal event to each webhook that wants it, as Orchestrator does."""
        event_type = EVENT_TYPES[job.state]
        body = orjson.dumps(self._event(event_type, job))
        for hook in self.webhooks:
            reason = hook.skip_reason(event_type, time.monotonic())
            if reason is None and self.faults.drop_callbacks:
                reason = "dropped"
            if reason is None:
                self.spawn(self._deliver(hook, event_type, job.id, body))
            elif reason != "not-subscribed":
                record = {"event": event_type, "jobId": job.id, "url": hook.url}
                self.deliveries.append({**record, "outcome": reason})

    def _event(self, event_type: str, job: SimJob) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Type": event_type,
            "EventId": uuid.uuid4().hex,
            "Timestamp": now_iso(),
        }
        if event_type == "job.stopped":
            doc["Jobs"] = [job.event_job()]  # job.stopped carries an array (vendors.md §3)
        else:
            doc["Job"] = job.event_job()
        return {**doc, "TenantId": self.tenant_id, "OrganizationUnitId": job.folder}

    async def _deliver(self, hook: Webhook, event_type: str, job_id: int, body: bytes) -> None:
        """Post one event once; a failure opens the circuit breaker (no retry, as documented)."""
        headers = {"Content-Type": "application/json"}
        if hook.secret:  # no secret, no signature header
            headers[SIGNATURE_HEADER] = sign(hook.secret, body)
        status = await self.post(hook.url, body, headers)
        delivered = status is not None and 200 <= status < 300
        if not delivered:
            hook.open_until = time.monotonic() + self.disable_for_s
        outcome = "delivered" if delivered else "failed"
        record = {"event": event_type, "jobId": job_id, "url": hook.url, "status": status}
        self.deliveries.append({**record, "outcome": outcome})


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise refuse(400, "The request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise refuse(400, "The request body must be a JSON object.")
    return doc


def _webhook_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A CreateWebhook body with its required fields, as Orchestrator validates it."""
    for name, kind in WEBHOOK_REQUIRED.items():
        if not isinstance(doc.get(name), kind) or (kind is str and not doc[name]):
            raise refuse(400, f"The {name} field is required.")
    events = doc.get("Events") or []
    if not isinstance(events, list) or not all(
        isinstance(e, dict) and isinstance(e.get("EventType"), str) for e in events
    ):
        raise refuse(400, "Events must be a list of {EventType} objects.")
    secret = doc.get("Secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) > 100):
        raise refuse(400, "The Secret must be a string of at most 100 characters.")
    return doc


_START_LIMITS = {"InputArguments": 10_000, "EnvironmentVariables": 4_000, "Reference": 128}


async def _start_info(request: web.Request) -> dict[str, Any]:
    info = (await _json_object(request)).get("startInfo")
    if not isinstance(info, dict) or not isinstance(info.get("ReleaseKey"), str):
        raise refuse(400, "startInfo with a ReleaseKey is required.")
    for name, limit in _START_LIMITS.items():  # the spec's maxLength of each
        value = info.get(name)
        if isinstance(value, str) and len(value) > limit:
            raise refuse(400, f"{name} must be at most {limit} characters long.")
    return info


def _input_arguments(raw: Any) -> dict[str, Any]:
    """InputArguments as a JSON-encoded string; an object is refused, as Orchestrator does."""
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise refuse(400, "InputArguments must be a string containing JSON.")
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise refuse(400, "InputArguments is not valid JSON.") from None
    if not isinstance(arguments, dict):
        raise refuse(400, "InputArguments must encode a JSON object.")
    return arguments


_EQUALITY = re.compile(r"^(Reference|Key) eq (?:'((?:[^']|'')*)'|([0-9a-fA-F-]{36}))$")


def _equality(raw: str | None) -> tuple[str | None, str | None]:
    """(field, value) of `Reference eq 'x'` or `Key eq <guid>`; (None, None) without a filter."""
    if raw is None:
        return None, None
    match = _EQUALITY.match(raw.strip())
    if match is None:  # valid OData, but not simulated: 501, never a made-up refusal
        raise refuse(501, f"The simulator does not support the $filter {raw!r}.")
    quoted, bare = match.group(2), match.group(3)
    return match.group(1), quoted.replace("''", "'") if quoted is not None else bare


def _count(raw: Any) -> int:
    """JobsCount, between 1 and 10 in the simulator."""
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise refuse(400, "JobsCount must be a positive integer.")
    return min(raw, 10)
