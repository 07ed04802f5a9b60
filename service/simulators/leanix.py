"""A local SAP LeanIX: token exchange, a GraphQL subset for fact sheets, rate limits, webhooks.

    POST /services/mtm/v1/oauth2/token      Basic apitoken:<token> (or client_id=apitoken,
                                            client_secret=<token>) -> a JWT-shaped token
    POST /services/pathfinder/v1/graphql    Bearer; factSheet, updateFactSheet, createComment
                                            run by graphql-core; 429 per technical user
    GET/PUT /services/webhooks/v1/subscriptions/{id}/events|cursor
                                            PULL subscriptions (leanix_pull.py)
    POST /services/metrics/v1/points        Bearer; one Metrics API point (leanix_metrics)

It follows ../shared/reference/leanix.md. Where the reference is unconfirmed it guesses,
and says so here: the codes of the stale-rev and missing-fact-sheet errors, the answer to
validateOnly (the fact sheet as it would be, not saved), tags in the webhook snapshot,
and the X-Webhooks-Event header. `BaseFactSheet.field(key:)` exists only here: it reads
any field a patch stored. It must never call a real LeanIX.

This module holds the simulator: routes, token exchange, rate limiting, GraphQL resolvers,
webhook subscriptions. Its parts: leanix_schema (the GraphQL schema), leanix_factsheet (fact
sheets, patches, views), leanix_access (access tokens, rate limits), leanix_webhook
(webhook bodies and their POST).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import math
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from graphql import ExecutionResult, GraphQLResolveInfo, execute_sync

from service.simulators import leanix_listing
from service.simulators.base import Simulator, json_response
from service.simulators.leanix_access import Bucket, Issued, basic_api_token, jwt
from service.simulators.leanix_factsheet import (
    SimFactSheet,
    apply,
    check_rev,
    create,
    not_found,
    snapshot,
    timestamp,
    view,
)
from service.simulators.leanix_metrics import METRICS_PATH, MetricsApi
from service.simulators.leanix_pull import PullApi
from service.simulators.leanix_schema import SCHEMA, document
from service.simulators.leanix_subscriptions import SimSubscriptions
from service.simulators.leanix_webhook import Subscription, delivery, post

TOKEN_PATH = "/services/mtm/v1/oauth2/token"
GRAPHQL_PATH = "/services/pathfinder/v1/graphql"
DEFAULT_API_TOKEN = "sim-leanix-api-token"
DEFAULT_USER_ID = "5b2f3c1e-7d4a-4e0b-9c61-2a8f0d3e4b71"
DEFAULT_WORKSPACE_ID = "ae6756f1-4aa0-4356-92c6-a390a60cb8f0"
RATE_LIMIT_MESSAGE = "HTTP 429 Too Many Requests. USER_INTERVAL_REQUEST_LIMIT_EXCEEDED"


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
        # token, graphql, unauthorized, rate_limited, stale_rev
        self.requests: Counter[str] = Counter()
        self.presented: Counter[str] = Counter()  # API tokens offered, known or not
        self.subscriptions: list[Subscription] = []
        # A technical user's `principal.id` where it differs from its `sub`, and which of
        # the two a webhook's userId carries: LeanIX documents neither.
        self.principal_ids: dict[str, str] = {}
        self.echo_claim = "sub"  # or "principal.id"
        self.deliveries: list[dict[str, Any]] = []
        self._buckets: dict[str, Bucket] = {}
        self._signing_key = secrets.token_bytes(32)
        self._event_ids = itertools.count(42834)
        self._sequence = itertools.count(75086)
        self._sending: set[asyncio.Task[None]] = set()
        self.pull = PullApi(self._bearer_user, clock)  # PULL subscriptions (leanix_pull.py)
        self.subscription_api = SimSubscriptions(workspace_id, self._bearer_user, self._pulled)
        self.metrics = MetricsApi()

    def routes(self, app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post(GRAPHQL_PATH, self._graphql)
        self.pull.routes(app)
        self.subscription_api.routes(app)
        app.router.add_post(METRICS_PATH, self._metrics)

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
        fs = create(type, name or f"{type} {len(self.fact_sheets) + 1}", fields, self.tags)
        self.fact_sheets[fs.id] = fs
        return fs.id

    def expire_tokens(self) -> None:
        """Make every access token handed out so far expired (the next call gets a 401)."""
        now = self.clock()
        for issued in self.issued.values():
            issued.expires_at = min(issued.expires_at, now)

    def subscribe(
        self,
        target_url: str,
        authorization: str,
        payload_mode: str = "DEFAULT",
        envelope_user_id: bool = True,
    ) -> None:
        """Send a FactSheetUpdatedEvent to `target_url` after every saved update."""
        self.subscriptions.append(
            Subscription(target_url, authorization, payload_mode, envelope_user_id)
        )

    def pull_event(
        self, fact_sheet_id: str, event_type: str = "FactSheetUpdatedEvent"
    ) -> dict[str, Any]:
        """Log one event on every PULL subscription; return it (payloadMode DEFAULT)."""
        event = self.event(fact_sheet_id, event_type)
        self.pull.append(event)
        return event

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
            "createdAt": timestamp(),
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
        body = delivery(self.event(fact_sheet_id, event_type, user_id), payload_mode)
        return await self._post(target_url, authorization, body)

    # --- webhooks ---------------------------------------------------------------------------

    def _pulled(self, subscription: dict[str, Any]) -> None:
        """A PULL subscription made over the API: its events are logged from now on."""
        mode = str(subscription.get("payloadMode") or "DEFAULT")
        self.pull.subscribe(mode, id=subscription["id"])

    async def _post(self, target_url: str, authorization: str, body: dict[str, Any]) -> int:
        status = await post(target_url, authorization, body, self.workspace_id)
        self.deliveries.append({"target_url": target_url, "status": status})
        return status

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
        actor = self.principal_ids.get(user_id, user_id) if self.echo_claim != "sub" else user_id
        if self.pull.feeds:
            self.pull.append(self.event(fact_sheet_id, "FactSheetUpdatedEvent", actor))
        for subscription in self.subscriptions:
            event = self.event(fact_sheet_id, "FactSheetUpdatedEvent", actor)
            body = delivery(event, subscription.payload_mode)
            if subscription.payload_mode == "WRAPPED_EVENT" and not subscription.envelope_user_id:
                del body["userId"]
            task = asyncio.get_running_loop().create_task(self._deliver(subscription, body))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    # --- token exchange ---------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        api_token = basic_api_token(request.headers.get("Authorization", ""))
        if api_token is None and form.get("client_id") == "apitoken":
            api_token = str(form.get("client_secret", ""))
        self.presented[api_token or ""] += 1
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
                "id": self.principal_ids.get(user_id, user_id),
                "username": f"technical-user-{user_id[:8]}",
                "permission": {"workspaceId": self.workspace_id, "workspaceName": "sim"},
            },
        }
        token = jwt(claims, self._signing_key)
        self.issued[token] = Issued(user_id, now + self.token_ttl_s)
        return token

    def _bearer_user(self, request: web.Request) -> str | None:
        """The user of a valid, unexpired bearer token, else None."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        issued = self.issued.get(token.strip()) if scheme.lower() == "bearer" else None
        if issued is None:  # never handed out here (e.g. another workspace's): counted
            self.requests["unknown_bearer"] += 1
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

    async def _metrics(self, request: web.Request) -> web.Response:
        user_id = self._bearer_user(request)
        if user_id is None:
            self.requests["unauthorized"] += 1
            return json_response({"status": "ERROR", "message": "Unauthorized"}, 401)
        wait_s = self._bucket(user_id).take()
        if wait_s:
            self.requests["rate_limited"] += 1
            retry = {"Retry-After": str(max(1, math.ceil(wait_s)))}
            return json_response({"status": "ERROR", "message": RATE_LIMIT_MESSAGE}, 429, retry)
        self.requests["metrics"] += 1
        return await self.metrics.receive(request, user_id)

    def _bucket(self, user_id: str) -> Bucket:
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = Bucket(self.rate_limit_rps, self.rate_limit_rps)
        return bucket

    def _execute(self, doc: Any, user_id: str) -> dict[str, Any]:
        if not isinstance(doc, dict) or not isinstance(doc.get("query"), str):
            return {"data": None, "errors": [{"message": "a request needs a query string"}]}
        variables = doc.get("variables")
        parsed = document(doc["query"])
        if isinstance(parsed, tuple):  # did not parse or validate
            result = ExecutionResult(data=None, errors=list(parsed))
        else:
            result = execute_sync(
                SCHEMA,
                parsed,
                root_value={
                    "factSheet": self._resolve_fact_sheet,
                    "allFactSheets": self._resolve_all,
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
        if fs is None:
            raise not_found(fact_sheet_id)
        return fs

    def _resolve_fact_sheet(
        self, info: GraphQLResolveInfo[dict[str, str]], id: str
    ) -> dict[str, Any]:
        return view(self._get(id))

    def _resolve_all(
        self,
        info: GraphQLResolveInfo[dict[str, str]],
        first: int | None = None,
        after: str | None = None,
        filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return leanix_listing.page(self.fact_sheets.values(), view, first, after, filter)

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
        if isinstance(rev, int) and rev != current.rev:
            self.requests["stale_rev"] += 1  # a write refused as a conflict
        check_rev(current, rev)
        draft = copy.deepcopy(current)
        for patch in patches:
            apply(draft, patch or {}, self.tags)
        if validateOnly:
            return {"factSheet": view(draft)}
        draft.rev += 1
        draft.updated_at = timestamp()
        self.fact_sheets[id] = draft
        user_id = info.context["user_id"]
        record = {"fact_sheet_id": id, "rev": draft.rev, "user_id": user_id, "comment": comment}
        self.mutations.append(record | {"patches": [dict(p or {}) for p in patches]})
        self._notify(id, user_id)
        return {"factSheet": view(draft)}

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
            "createdAt": timestamp(),
            "userId": info.context["user_id"],
        }
        self.comments.setdefault(factSheetId, []).append(comment)
        return comment
