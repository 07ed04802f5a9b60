"""A local SAP LeanIX: token exchange, a GraphQL subset for fact sheets, rate limits, webhooks.

    POST /services/mtm/v1/oauth2/token      Basic apitoken:<token> (or client_id=apitoken,
                                            client_secret=<token>) -> a JWT-shaped token
    POST /services/pathfinder/v1/graphql    Bearer; factSheet, updateFactSheet, createComment
                                            run by graphql-core; 429 per technical user

It follows ../shared/reference/leanix.md. Where the reference is unconfirmed it guesses,
and says so here: the codes of the stale-rev and missing-fact-sheet errors, the answer to
validateOnly (the fact sheet as it would be, not saved), tags in the webhook snapshot,
and the X-Webhooks-Event header. `BaseFactSheet.field(key:)` exists only here: it reads
any field a patch stored. It must never call a real LeanIX.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import hashlib
import hmac
import itertools
import math
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLResolveInfo,
    build_schema,
    execute_sync,
    parse,
    validate,
)

from service.simulators.base import Simulator, json_response

TOKEN_PATH = "/services/mtm/v1/oauth2/token"
GRAPHQL_PATH = "/services/pathfinder/v1/graphql"
DEFAULT_API_TOKEN = "sim-leanix-api-token"
DEFAULT_USER_ID = "5b2f3c1e-7d4a-4e0b-9c61-2a8f0d3e4b71"
DEFAULT_WORKSPACE_ID = "ae6756f1-4aa0-4356-92c6-a390a60cb8f0"
RATE_LIMIT_MESSAGE = "HTTP 429 Too Many Requests. USER_INTERVAL_REQUEST_LIMIT_EXCEEDED"

FACT_SHEET_TYPES = (
    "Application",
    "BusinessCapability",
    "DataObject",
    "Interface",
    "ITComponent",
    "Process",
    "Project",
    "Provider",
    "TechnicalStack",
    "UserGroup",
)
PHASES = ("plan", "phaseIn", "active", "phaseOut", "endOfLife")
LX_STATES = frozenset({"BROKEN_QUALITY_SEAL", "DRAFT", "REJECTED", "APPROVED"})
STATUSES = frozenset({"ACTIVE", "ARCHIVED"})
_EMPTY_LISTS = (
    *("relations", "documents", "milestones", "naFields"),
    *("subscriptions", "permittedReadACL", "permittedWriteACL"),
)
TYPED_FIELDS = ("alias", "release", "businessCriticality", "functionalSuitability")

_BASE_FIELDS = """
    id: ID!
    rev: Long!
    name: String!
    displayName: String
    fullName: String
    type: String!
    status: FactSheetStatus!
    description: String
    lxState: String
    tags: [Tag!]!
    createdAt: String
    updatedAt: String
    "Simulator only: the raw value a patch stored at /<key>."
    field(key: String!): String
"""
_TYPE_FIELDS = "lifecycle: Lifecycle\n" + "".join(f"    {f}: String\n" for f in TYPED_FIELDS)
_TYPES = "\n".join(
    f"type {t} implements BaseFactSheet {{ {_BASE_FIELDS} {_TYPE_FIELDS} }}"
    for t in FACT_SHEET_TYPES
)

SDL = f"""
scalar Long
enum PatchOperation {{ add replace remove }}
enum CommentStatus {{ ACTIVE CLOSED }}
enum FactSheetStatus {{ ACTIVE ARCHIVED }}
input Patch {{ op: PatchOperation! path: String! value: String }}
type Tag {{ id: ID! name: String! }}
type LifecyclePhase {{ phase: String! startDate: String }}
type Lifecycle {{ asString: String phases: [LifecyclePhase!]! }}
interface BaseFactSheet {{ {_BASE_FIELDS} }}
{_TYPES}
type UpdateResult {{ factSheet: BaseFactSheet }}
type Comment {{ id: ID! message: String! status: CommentStatus factSheetId: ID createdAt: String }}
type Query {{ factSheet(id: ID!): BaseFactSheet }}
type Mutation {{
  updateFactSheet(
    id: ID!, rev: Long, comment: String, patches: [Patch]!, validateOnly: Boolean
  ): UpdateResult
  createComment(factSheetId: ID!, message: String!, status: CommentStatus): Comment
}}
"""
SCHEMA = build_schema(SDL)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SimFactSheet:
    """A stored fact sheet; tests may change it directly (e.g. bump `rev`)."""

    id: str
    type: str
    name: str
    rev: int = 0
    status: str = "ACTIVE"
    description: str = ""
    lx_state: str = "DRAFT"
    phases: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)  # {"id", "name"}
    fields: dict[str, str] = field(default_factory=dict)  # any other /<field>, raw
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)


@dataclass
class Issued:
    """An access token the simulator handed out."""

    user_id: str
    expires_at: float  # on the simulator's epoch clock


@dataclass
class _Bucket:
    """Per-user token bucket: `rate` requests a second, as many at once."""

    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """Take a token: 0 if allowed, else the seconds until one is due."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return (1 - self.tokens) / self.rate
        self.tokens -= 1
        return 0.0


class PatchRejected(Exception):
    """A patch the model does not accept."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path


def _error(code: str, text: str, fact_sheet_id: str, error_type: str, **more: str) -> GraphQLError:
    """A LeanIX-shaped GraphQL error: `[CODE] text` with errorType and objectId."""
    extensions = {"entityType": "FACT_SHEET", "objectId": fact_sheet_id, "errorType": error_type}
    return GraphQLError(f"[{code}] {text}", extensions=extensions | more)


# --- patches ------------------------------------------------------------------------------


def _json(value: str, path: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise PatchRejected(path, f"the value of {path} is not JSON") from None


def _date(value: str, path: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise PatchRejected(path, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _one_of(value: str, allowed: frozenset[str], path: str) -> str:
    if value not in allowed:
        raise PatchRejected(path, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _set_only(op: str, path: str) -> None:
    if op == "remove":
        raise PatchRejected(path, f"{path} cannot be removed")


def _patch_name(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    _set_only(op, path)
    if not value.strip():
        raise PatchRejected(path, "the name must not be empty")
    fs.name = value


def _patch_description(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    fs.description = "" if op == "remove" else value


def _patch_lx_state(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    _set_only(op, path)
    fs.lx_state = _one_of(value, LX_STATES, path)


def _patch_status(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    _set_only(op, path)
    fs.status = _one_of(value, STATUSES, path)


def _patch_lifecycle(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    """Set the whole lifecycle (overwriting every phase) or, at /lifecycle/<phase>, one."""
    if rest:
        _one_of(rest, frozenset(PHASES), path)
        if op == "remove":
            fs.phases.pop(rest, None)
        else:
            fs.phases[rest] = _date(value, path)
        return
    doc = {} if op == "remove" else _json(value, path)
    phases = doc.get("phases", []) if isinstance(doc, dict) else None
    if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
        raise PatchRejected(path, 'a lifecycle is {"phases": [{"phase", "startDate"}, ...]}')
    fs.phases = {
        _one_of(str(p.get("phase")), frozenset(PHASES), path): _date(p.get("startDate"), path)
        for p in phases
    }


def _patch_field(fs: SimFactSheet, op: str, key: str, value: str, path: str) -> None:
    if op == "remove":
        fs.fields.pop(key, None)
    else:
        fs.fields[key] = value


# --- views --------------------------------------------------------------------------------


def _current_phase(phases: dict[str, str]) -> str | None:
    today = date.today().isoformat()
    started = [p for p in PHASES if p in phases and phases[p] <= today]
    return started[-1] if started else None


def _lifecycle(fs: SimFactSheet) -> dict[str, Any] | None:
    if not fs.phases:
        return None
    phases = [{"phase": p, "startDate": fs.phases[p]} for p in PHASES if p in fs.phases]
    return {"asString": _current_phase(fs.phases), "phases": phases}


def view(fs: SimFactSheet) -> dict[str, Any]:
    """The fact sheet as GraphQL serves it."""
    stored = dict(fs.fields)
    doc: dict[str, Any] = {
        "__typename": fs.type,
        **{key: stored.get(key) for key in TYPED_FIELDS},
        "id": fs.id,
        "rev": fs.rev,
        "name": fs.name,
        "displayName": fs.name,
        "fullName": fs.name,
        "type": fs.type,
        "status": fs.status,
        "description": fs.description,
        "lxState": fs.lx_state,
        "tags": [dict(tag) for tag in fs.tags],
        "lifecycle": _lifecycle(fs),
        "createdAt": fs.created_at,
        "updatedAt": fs.updated_at,
    }
    doc["field"] = lambda info, key: stored.get(key)
    return doc


def _field_data(key: str, raw: str) -> dict[str, Any]:
    return {"name": key, "data": {"type": "StringValue", "value": raw}}


def snapshot(fs: SimFactSheet) -> dict[str, Any]:
    """The fact sheet as a webhook carries it (reference Samples A and B)."""
    fields = [_field_data(k, v) for k, v in fs.fields.items() if "/" not in k]
    if fs.description:
        fields.insert(0, _field_data("description", fs.description))
    if fs.phases:
        phases = [
            {"startDate": fs.phases[p], "milestoneId": None, "phase": p}
            for p in PHASES
            if p in fs.phases
        ]
        fields.insert(0, {"name": "lifecycle", "data": {"type": "Lifecycle", "phases": phases}})
    doc = {
        "id": fs.id,
        "rev": fs.rev,
        "name": fs.name,
        "displayName": fs.name,
        "fullName": fs.name,
        "type": fs.type,
        "level": 1,
        "fields": fields,
        "status": fs.status,
        "lxState": fs.lx_state,
        "createdAt": fs.created_at,
        "updatedAt": fs.updated_at,
        **{key: [] for key in _EMPTY_LISTS},
        "lxExcludeFromQuota": False,
    }
    if fs.tags:  # a guess: the samples have no tags, so they may only be left out when empty
        doc["tags"] = [dict(tag) for tag in fs.tags]
    return doc


def event_tag(event_type: str) -> str:
    """`FactSheetUpdatedEvent` -> `FACT_SHEET_UPDATED`."""
    name = event_type.removesuffix("Event")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


@dataclass(frozen=True)
class Subscription:
    target_url: str
    authorization: str = field(repr=False)


class LeanixSimulator(Simulator):
    """A faithful local LeanIX workspace."""

    name = "leanix"

    def __init__(
        self,
        api_tokens: dict[str, str] | None = None,
        rate_limit_rps: float = 30.0,
        token_ttl_s: int = 3600,
        workspace_id: str = DEFAULT_WORKSPACE_ID,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.api_tokens = dict(api_tokens or {DEFAULT_API_TOKEN: DEFAULT_USER_ID})
        self.rate_limit_rps = rate_limit_rps
        self.token_ttl_s = token_ttl_s
        self.workspace_id = workspace_id
        self.clock = clock
        self.fact_sheets: dict[str, SimFactSheet] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.mutations: list[dict[str, Any]] = []
        self.tags: dict[str, str] = {}  # name -> id
        self.issued: dict[str, Issued] = {}
        self.requests: Counter[str] = Counter()  # token, graphql, unauthorized, rate_limited
        self.subscriptions: list[Subscription] = []
        self.deliveries: list[dict[str, Any]] = []
        self._buckets: dict[str, _Bucket] = {}
        self._signing_key = secrets.token_bytes(32)
        self._event_ids = itertools.count(42834)
        self._sequence = itertools.count(75086)
        self._sending: set[asyncio.Task[None]] = set()
        self._patchers = {
            "name": _patch_name,
            "description": _patch_description,
            "lxState": _patch_lx_state,
            "status": _patch_status,
            "lifecycle": _patch_lifecycle,
            "tags": self._patch_tags,
        }

    def routes(self, app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post(GRAPHQL_PATH, self._graphql)

    def state(self) -> dict[str, Any]:
        return {
            "fact_sheets": {fs_id: snapshot(fs) for fs_id, fs in self.fact_sheets.items()},
            "comments": self.comments,
            "mutations": len(self.mutations),
            "requests": dict(self.requests),
            "deliveries": self.deliveries,
        }

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on loopback; on exit, finish the webhook deliveries still under way."""
        async with super().serve(host, port) as url:
            try:
                yield url
            finally:
                await self.drain()

    # --- test helpers -----------------------------------------------------------------------

    def add_fact_sheet(self, type: str = "Application", name: str = "", **fields: Any) -> str:
        """Store a fact sheet; return its id.

        Keywords: description, lxState, status, lifecycle ({phase: date}), tags ([names]);
        anything else is stored as a field (non-strings JSON-encoded).
        """
        if type not in FACT_SHEET_TYPES:
            raise ValueError(f"unknown fact sheet type {type!r}")
        fs = SimFactSheet(str(uuid.uuid4()), type, name or f"{type} {len(self.fact_sheets) + 1}")
        fs.description = str(fields.pop("description", ""))
        fs.lx_state = str(fields.pop("lxState", fs.lx_state))
        fs.status = str(fields.pop("status", fs.status))
        fs.phases = {str(k): str(v) for k, v in fields.pop("lifecycle", {}).items()}
        fs.tags = [self._tag({"tagName": str(n)}, "/tags") for n in fields.pop("tags", [])]
        for key, value in fields.items():
            raw = value if isinstance(value, str) else orjson.dumps(value).decode()
            fs.fields[key] = raw
        self.fact_sheets[fs.id] = fs
        return fs.id

    def expire_tokens(self) -> None:
        """Make every access token handed out so far expired (the next call gets a 401)."""
        now = self.clock()
        for issued in self.issued.values():
            issued.expires_at = min(issued.expires_at, now)

    def subscribe(self, target_url: str, authorization: str) -> None:
        """Send a FactSheetUpdatedEvent to `target_url` after every saved update."""
        self.subscriptions.append(Subscription(target_url, authorization))

    async def drain(self) -> None:
        """Wait until every webhook delivery under way has finished."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def event(
        self,
        fact_sheet_id: str,
        event_type: str = "FactSheetUpdatedEvent",
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """A webhook event about one fact sheet as it is now (payloadMode DEFAULT)."""
        return {
            "id": next(self._event_ids),
            "type": event_type,
            "userId": user_id or next(iter(self.api_tokens.values()), DEFAULT_USER_ID),
            "createdAt": _now(),
            "workspaceId": self.workspace_id,
            "transactionSequenceNumber": next(self._sequence),
            "clonedFactSheet": False,
            "factSheet": snapshot(self.fact_sheets[fact_sheet_id]),
        }

    async def send_event(
        self,
        target_url: str,
        authorization: str,
        fact_sheet_id: str,
        event_type: str = "FactSheetUpdatedEvent",
        user_id: str | None = None,
        payload_mode: str = "DEFAULT",
    ) -> int:
        """POST one webhook event as LeanIX would; return the receiver's HTTP status."""
        body = self._delivery(self.event(fact_sheet_id, event_type, user_id), payload_mode)
        return await self._post(target_url, authorization, body)

    # --- webhooks ---------------------------------------------------------------------------

    def _delivery(self, event: dict[str, Any], payload_mode: str) -> dict[str, Any]:
        """The body for a payload mode: the event, the wrapped event, or nothing."""
        if payload_mode == "NO_PAYLOAD":
            return {}
        if payload_mode != "WRAPPED_EVENT":
            return event
        tag = event_tag(str(event["type"]))
        return {
            "id": event["id"],
            "createdAt": event["createdAt"],
            "type": tag,
            "sourceName": "EAM",
            "sourceId": "pathfinder",
            "sourceUrl": None,
            "workspaceId": event["workspaceId"],
            "userId": event["userId"],
            "tags": ["pathfinder", tag],
            "payload": event,
            "sequenceInfo": {"transactionSequenceNumber": event["transactionSequenceNumber"]},
        }

    async def _post(self, target_url: str, authorization: str, body: dict[str, Any]) -> int:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Webhooks",
            "X-Webhooks-Event": f"{self.workspace_id}.leanix.net",  # shape unconfirmed
        }
        if authorization:
            headers["Authorization"] = authorization
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(target_url, data=orjson.dumps(body), headers=headers) as response,
        ):
            await response.read()
        self.deliveries.append({"target_url": target_url, "status": response.status})
        return response.status

    async def _deliver(self, subscription: Subscription, body: dict[str, Any]) -> None:
        """Deliver in the background; a failure is recorded, never raised."""
        try:
            await self._post(subscription.target_url, subscription.authorization, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = {"target_url": subscription.target_url, "error": type(exc).__name__}
            self.deliveries.append(failure)

    def _notify(self, fact_sheet_id: str, user_id: str) -> None:
        """Queue a FactSheetUpdatedEvent per subscription, without delaying the answer."""
        if self.faults.drop_callbacks:
            return
        for subscription in self.subscriptions:
            body = self.event(fact_sheet_id, "FactSheetUpdatedEvent", user_id)
            task = asyncio.get_running_loop().create_task(self._deliver(subscription, body))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    # --- token exchange ---------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        api_token = _basic_api_token(request.headers.get("Authorization", ""))
        if api_token is None and form.get("client_id") == "apitoken":
            api_token = str(form.get("client_secret", ""))
        user_id = self.api_tokens.get(api_token or "")
        if user_id is None:
            self.requests["unauthorized"] += 1
            return json_response({"error": "unauthorized", "error_description": "Bad token"}, 401)
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        self.requests["token"] += 1
        return json_response(
            {
                "scope": "",
                "expired": False,
                "access_token": self._issue(user_id),
                "token_type": "bearer",
                "expires_in": self.token_ttl_s - 1,
            }
        )

    def _issue(self, user_id: str) -> str:
        """A JWT-shaped access token (HS256 with the simulator's own key) for a user."""
        now = self.clock()
        claims = {
            "sub": user_id,
            "iss": "https://eu-svc.leanix.net",
            "jti": str(uuid.uuid4()),
            "iat": int(now),
            "exp": int(now + self.token_ttl_s),
            "instanceUrl": self.base_url,
            "principal": {
                "id": user_id,
                "username": f"technical-user-{user_id[:8]}",
                "permission": {"workspaceId": self.workspace_id, "workspaceName": "sim"},
            },
        }
        header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        signing_input = f"{header}.{_b64url(orjson.dumps(claims))}"
        signature = hmac.new(self._signing_key, signing_input.encode(), hashlib.sha256)
        token = f"{signing_input}.{_b64url(signature.digest())}"
        self.issued[token] = Issued(user_id, now + self.token_ttl_s)
        return token

    def _bearer_user(self, request: web.Request) -> str | None:
        """The user of a valid, unexpired bearer token, else None."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        issued = self.issued.get(token.strip()) if scheme.lower() == "bearer" else None
        if issued is None or self.clock() >= issued.expires_at:
            return None
        return issued.user_id

    # --- GraphQL ----------------------------------------------------------------------------

    async def _graphql(self, request: web.Request) -> web.Response:
        user_id = self._bearer_user(request)
        if user_id is None:
            self.requests["unauthorized"] += 1
            return json_response({"errors": [{"message": "Unauthorized"}]}, 401)
        wait_s = self._bucket(user_id).take()
        if wait_s:
            self.requests["rate_limited"] += 1
            retry = {"Retry-After": str(max(1, math.ceil(wait_s)))}
            body = {"status": "ERROR", "message": RATE_LIMIT_MESSAGE}
            return json_response(body, 429, retry)
        self.requests["graphql"] += 1
        try:
            doc = await request.json(loads=orjson.loads)
        except ValueError:
            return json_response({"errors": [{"message": "the body is not JSON"}]}, 400)
        return json_response(self._execute(doc, user_id))

    def _bucket(self, user_id: str) -> _Bucket:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(self.rate_limit_rps, self.rate_limit_rps)
        return bucket

    def _execute(self, doc: Any, user_id: str) -> dict[str, Any]:
        if not isinstance(doc, dict) or not isinstance(doc.get("query"), str):
            return {"data": None, "errors": [{"message": "a request needs a query string"}]}
        variables = doc.get("variables")
        document = _document(doc["query"])
        if isinstance(document, tuple):  # did not parse or validate
            result = ExecutionResult(data=None, errors=list(document))
        else:
            result = execute_sync(
                SCHEMA,
                document,
                root_value={
                    "factSheet": self._resolve_fact_sheet,
                    "updateFactSheet": self._resolve_update,
                    "createComment": self._resolve_comment,
                },
                context_value={"user_id": user_id},
                variable_values=variables if isinstance(variables, dict) else None,
                operation_name=doc.get("operationName"),
            )
        formatted = result.formatted
        return {"data": formatted.get("data"), "errors": formatted.get("errors")}

    def _get(self, fact_sheet_id: str) -> SimFactSheet:
        fs = self.fact_sheets.get(fact_sheet_id)
        if fs is None:  # code and errorType are guesses
            text = f"Fact sheet {fact_sheet_id} does not exist"
            raise _error("FS_NOT_FOUND", text, fact_sheet_id, "NOT_FOUND")
        return fs

    def _resolve_fact_sheet(
        self, info: GraphQLResolveInfo[dict[str, str]], id: str
    ) -> dict[str, Any]:
        return view(self._get(id))

    def _resolve_update(
        self,
        info: GraphQLResolveInfo[dict[str, str]],
        id: str,
        patches: list[dict[str, Any] | None],
        rev: Any = None,
        comment: str | None = None,
        validateOnly: bool | None = None,  # named as in the schema
    ) -> dict[str, Any]:
        current = self._get(id)
        self._check_rev(current, rev)
        draft = copy.deepcopy(current)
        for patch in patches:
            self._apply(draft, patch or {})
        if validateOnly:
            return {"factSheet": view(draft)}
        draft.rev += 1
        draft.updated_at = _now()
        self.fact_sheets[id] = draft
        user_id = info.context["user_id"]
        record = {"fact_sheet_id": id, "rev": draft.rev, "user_id": user_id, "comment": comment}
        self.mutations.append(record | {"patches": [dict(p or {}) for p in patches]})
        self._notify(id, user_id)
        return {"factSheet": view(draft)}

    def _check_rev(self, current: SimFactSheet, rev: Any) -> None:
        """Refuse a write at another rev than the stored one (the error text is a guess)."""
        if rev is None:
            return
        if not isinstance(rev, int) or isinstance(rev, bool):
            raise _error("FS_VALIDATION_INVALID_REV", "rev must be a number", current.id, "INPUT")
        if rev != current.rev:
            text = (
                f"The fact sheet was changed meanwhile: rev {rev} is not the latest ({current.rev})"
            )
            raise _error("FS_VALIDATION_REVISION_MISMATCH", text, current.id, "REVISION_MISMATCH")

    def _apply(self, fs: SimFactSheet, patch: dict[str, Any]) -> None:
        op, path, value = patch.get("op"), str(patch.get("path") or ""), patch.get("value")
        head, _, rest = path.removeprefix("/").partition("/")
        try:
            if not head or not path.startswith("/"):
                raise PatchRejected(path, f"{path!r} is not a patch path")
            patcher = self._patchers.get(head)
            if patcher is None:
                _patch_field(fs, str(op), path.removeprefix("/"), value or "", path)
            else:
                patcher(fs, str(op), rest, value or "", path)
        except PatchRejected as exc:
            code, kind = "FS_VALIDATION_INVALID_PATCH", "MODEL_COMPLIANT"
            raise _error(code, str(exc), fs.id, kind, objectPath=exc.path) from None

    def _patch_tags(self, fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
        """add: attach tags; replace: set the whole list; remove: detach the given tags."""
        refs = [] if op == "remove" and not value else _json(value, path)
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            raise PatchRejected(path, 'tags are [{"tagName": ...} or {"tagId": ...}, ...]')
        tags = [self._tag(ref, path) for ref in refs]
        if op == "add":
            fs.tags += [t for t in tags if t not in fs.tags]
        elif op == "replace":
            fs.tags = tags
        else:  # remove: the listed tags, or every tag when none is listed
            fs.tags = [t for t in fs.tags if tags and t not in tags]

    def _tag(self, ref: dict[str, Any], path: str) -> dict[str, str]:
        """The tag a reference names: an existing tagId, or a tagName (created if new)."""
        if "tagId" in ref:
            names = [n for n, i in self.tags.items() if i == ref["tagId"]]
            if not names:
                raise PatchRejected(path, f"no tag has the id {ref['tagId']!r}")
            return {"id": str(ref["tagId"]), "name": names[0]}
        name = str(ref.get("tagName") or "").strip()
        if not name:
            raise PatchRejected(path, "a tag needs a tagName or a tagId")
        tag_id = self.tags.setdefault(name, str(uuid.uuid4()))
        return {"id": tag_id, "name": name}

    def _resolve_comment(
        self,
        info: GraphQLResolveInfo[dict[str, str]],
        factSheetId: str,  # named as in the schema
        message: str,
        status: str | None = None,
    ) -> dict[str, Any]:
        self._get(factSheetId)
        comment = {
            "id": str(uuid.uuid4()),
            "message": message,
            "status": status or "ACTIVE",
            "factSheetId": factSheetId,
            "createdAt": _now(),
            "userId": info.context["user_id"],
        }
        self.comments.setdefault(factSheetId, []).append(comment)
        return comment


def _basic_api_token(header: str) -> str | None:
    """The API token in `Basic base64(apitoken:<token>)`, else None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except ValueError:
        return None
    return password if user == "apitoken" else None


@functools.lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode | tuple[GraphQLError, ...]:
    """A query parsed and validated once (a client sends the same few documents again and
    again, the batch of 25 updates included), or why it cannot run."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return (exc,)
    errors = validate(SCHEMA, document)
    return tuple(errors) if errors else document
