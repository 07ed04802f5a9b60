"""The Robocorp simulator's webhooks API: process-scoped webhooks with generated secrets.

    GET    /workspaces/{ws}/webhooks          list (items without their secret)
    POST   /workspaces/{ws}/webhooks          create {endpoint, enabled_events, process{id}}
    GET    /workspaces/{ws}/webhooks/{id}     one, with its secret
    DELETE /workspaces/{ws}/webhooks/{id}     {id, deleted: true}

As contracts/robocorp.json: there is no update, and Control Room generates the secret.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from service.simulators.base import Handler, json_response

EVENTS = frozenset({"process_run.started", "process_run.completed", "process_run.unresolved"})
READ_WEBHOOKS = "Webhooks.read_webhooks"
WRITE_WEBHOOKS = "Webhooks.write_webhooks"
Guard = Callable[[Handler, str], Handler]


def _error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status)


class SimWebhooks:
    """The webhooks of the simulated workspace, by id."""

    def __init__(self, processes: dict[str, str]) -> None:
        self.processes = processes  # the simulator's: id -> name
        self.hooks: dict[str, dict[str, Any]] = {}

    def routes(self, app: web.Application, workspace: str, guard: Guard) -> None:
        add = app.router.add_route
        add("GET", f"{workspace}/webhooks", guard(self._list, READ_WEBHOOKS))
        add("POST", f"{workspace}/webhooks", guard(self._create, WRITE_WEBHOOKS))
        add("GET", f"{workspace}/webhooks/{{hid}}", guard(self._get, READ_WEBHOOKS))
        add("DELETE", f"{workspace}/webhooks/{{hid}}", guard(self._delete, WRITE_WEBHOOKS))

    async def _list(self, request: web.Request) -> web.Response:
        items = [{k: v for k, v in h.items() if k != "secret"} for h in self.hooks.values()]
        return json_response({"data": items})

    async def _create(self, request: web.Request) -> web.Response:
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "invalid_request", "the body is not JSON")
        problem = _invalid(doc, self.processes)
        if problem:
            return _error(400, "invalid_request", problem)
        hook = {
            "id": str(uuid.uuid4()),
            "process": {"id": doc["process"]["id"]},
            "enabled_events": list(doc["enabled_events"]),
            "endpoint": doc["endpoint"],
            "secret": secrets.token_hex(16),
        }
        self.hooks[hook["id"]] = hook
        return json_response(hook)

    async def _get(self, request: web.Request) -> web.Response:
        hook = self.hooks.get(request.match_info["hid"])
        if hook is None:
            return _error(404, "not_found", "no such webhook")
        return json_response(hook)

    async def _delete(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hid"]
        if self.hooks.pop(hook_id, None) is None:
            return _error(404, "not_found", "no such webhook")
        return json_response({"id": hook_id, "deleted": True})


def _invalid(doc: Any, processes: dict[str, str]) -> str | None:
    """What is wrong with a create body, or None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("endpoint"), str):
        return "endpoint is required"
    events = doc.get("enabled_events")
    if not isinstance(events, list) or not events or not set(events) <= EVENTS:
        return f"enabled_events must be a non-empty subset of {sorted(EVENTS)}"
    process = doc.get("process")
    if not isinstance(process, dict) or process.get("id") not in processes:
        return "process.id must name a process of the workspace"
    return None
