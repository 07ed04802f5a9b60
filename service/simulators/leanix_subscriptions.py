"""The LeanIX simulator's webhook subscriptions API (CRUD), as the Webhooks REST API.

    GET    /services/webhooks/v1/subscriptions?identifier=   {status, data: [subscription]}
    POST   /services/webhooks/v1/subscriptions               {status, data: subscription}
    GET    /services/webhooks/v1/subscriptions/{id}
    PUT    /services/webhooks/v1/subscriptions/{id}          full replacement
    DELETE /services/webhooks/v1/subscriptions/{id}          {status, data: the deleted one}

Bearer-authenticated like GraphQL. Guesses where the reference is unconfirmed: 200 for
every success and 400/404 with {status: ERROR, message}; a read gives the
authorizationHeader back (the model has the field). Only the CRUD lives here; delivering
events to subscriptions (PUSH, PULL) is the simulator's: a PULL subscription created here
gets a PULL feed of the same id (`on_pull`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from service.simulators.base import json_response

PATH = "/services/webhooks/v1/subscriptions"
KEPT = (
    "identifier", "deliveryType", "tagSets", "targetUrl", "targetMethod", "authorizationHeader",
    "callback", "ignoreError", "maxBatchSize", "workspaceConstraint", "active", "payloadMode",
)  # fmt: skip


def _error(status: int, message: str) -> web.Response:
    return json_response(
        {"status": "ERROR", "type": "SubscriptionResponse", "message": message}, status
    )


def _ok(data: Any) -> web.Response:
    return json_response({"status": "OK", "type": "SubscriptionResponse", "data": data})


class SimSubscriptions:
    """The workspace's subscriptions, by id; `user_of` authenticates a request (or None)."""

    def __init__(
        self,
        workspace_id: str,
        user_of: Callable[[web.Request], str | None],
        on_pull: Callable[[dict[str, Any]], object] = lambda item: None,
    ) -> None:
        self.workspace_id = workspace_id
        self.user_of = user_of
        self.on_pull = on_pull  # a PULL subscription was created or updated: log its events
        self.items: dict[str, dict[str, Any]] = {}
        self.writes = 0  # creates and updates, for tests of idempotence

    def routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self._list)
        app.router.add_post(PATH, self._create)
        app.router.add_get(PATH + "/{id}", self._get)
        app.router.add_put(PATH + "/{id}", self._put)
        app.router.add_delete(PATH + "/{id}", self._delete)

    async def _list(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        if user is None:
            return _error(401, "Unauthorized")
        wanted = request.query.get("identifier")
        found = [s for s in self.items.values() if wanted is None or s["identifier"] == wanted]
        return json_response({"status": "OK", "total": len(found), "data": found})

    async def _create(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        if user is None:
            return _error(401, "Unauthorized")
        doc, problem = await _input(request)
        if problem:
            return _error(400, problem)
        created = {"id": str(uuid.uuid4()), "createdAt": datetime.now(UTC).isoformat()}
        item = self.items[created["id"]] = _stored(doc, user, self.workspace_id) | created
        self.writes += 1
        self._pulling(item)
        return _ok(item)

    def _pulling(self, item: dict[str, Any]) -> None:
        if item["deliveryType"] == "PULL":
            self.on_pull(item)

    async def _get(self, request: web.Request) -> web.Response:
        if self.user_of(request) is None:
            return _error(401, "Unauthorized")
        item = self.items.get(request.match_info["id"])
        return _ok(item) if item else _error(404, "Subscription not found")

    async def _put(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        if user is None:
            return _error(401, "Unauthorized")
        old = self.items.get(request.match_info["id"])
        if old is None:
            return _error(404, "Subscription not found")
        doc, problem = await _input(request)
        if problem:
            return _error(400, problem)
        kept = {k: old[k] for k in ("id", "createdAt")}
        item = self.items[old["id"]] = _stored(doc, user, self.workspace_id) | kept
        self.writes += 1
        self._pulling(item)
        return _ok(item)

    async def _delete(self, request: web.Request) -> web.Response:
        if self.user_of(request) is None:
            return _error(401, "Unauthorized")
        item = self.items.pop(request.match_info["id"], None)
        return _ok(item) if item else _error(404, "Subscription not found")


async def _input(request: web.Request) -> tuple[dict[str, Any], str | None]:
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return {}, "the body is not JSON"
    if not isinstance(doc, dict) or not isinstance(doc.get("ignoreError"), bool):
        return {}, "ignoreError is required"
    if doc.get("deliveryType", "PUSH") == "PUSH" and not (
        doc.get("targetUrl") and doc.get("targetMethod")
    ):
        return {}, "a PUSH subscription needs targetUrl and targetMethod"
    return doc, None


def _stored(doc: dict[str, Any], user: str, workspace_id: str) -> dict[str, Any]:
    item = {name: doc.get(name) for name in KEPT}
    item["deliveryType"] = item["deliveryType"] or "PUSH"
    item["active"] = True if item["active"] is None else item["active"]
    return item | {"userId": user, "workspaceId": doc.get("workspaceId") or workspace_id}
