"""The admin API (`/api/v1`) and the console page in the OpenAPI document.

Each admin operation names the one scope it requires, in its description and as
`x-required-scope`; its bodies are in openapi_admin_schemas.py. Describes only:
service/admin/api.py never reads it.
"""

from __future__ import annotations

from typing import Any

from service.admin.api import MAX_LIMIT
from service.admin.openapi_admin_schemas import RUN_STATUSES, TIME_TEXT
from service.admin.openapi_parts import JSON, Schema, json_response, problem, ref
from service.automation.rules import VENDORS
from service.store.eventlog import STATUSES


def paths() -> dict[str, Schema]:
    """The admin API's paths, then the console's."""
    return {**_admin_paths(), **_console_path()}


def _admin_paths() -> dict[str, Schema]:
    return {
        "/api/v1/events": {"get": _list_events()},
        "/api/v1/events/{id}": {"get": _get_event()},
        "/api/v1/runs": {"get": _list_runs()},
        "/api/v1/dead-letters": {"get": _list_dead_letters()},
        "/api/v1/dead-letters/replay": {"post": _replay()},
        "/api/v1/rules": {"get": _list_rules()},
        "/api/v1/status": {"get": _status()},
    }


def _admin_operation(
    operation_id: str, scope: str, summary: str, ok: Schema, **extra: Any
) -> Schema:
    """An admin operation: bearer key, `scope` required, 401/403 and `ok` as 200."""
    responses: Schema = {
        "200": ok,
        "401": problem(401, "No admin key, or an unknown or revoked one."),
        "403": problem(403, f"The key lacks the scope `{scope}`, or may not be used from "
                            "this address."),
        "503": problem(503, "The store is unavailable (or start-up still waits for it): "
                            "retry later.", RETRY_AFTER),
        **extra.pop("responses", {}),
    }  # fmt: skip
    return {
        "operationId": operation_id,
        "tags": ["admin"],
        "summary": summary,
        "description": f"{summary}. Requires the scope `{scope}`.",
        "security": [{"adminKey": []}],
        "x-required-scope": scope,
        "responses": responses,
        **extra,
    }


RETRY_AFTER = {"Retry-After": {
    "description": "Seconds to wait before calling again.", "required": True,
    "schema": {"type": "integer", "minimum": 1},
}}  # fmt: skip


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _limit() -> Schema:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}
    return _query("limit", "Page size.", schema)


def _cursor(pattern: str | None = None) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return _query("cursor", "The `next_cursor` of the previous page.", schema)


def _bad_query(what: str) -> Schema:
    return {"400": problem(400, f"A query parameter is invalid: {what}.")}


def _list_events() -> Schema:
    parameters = [
        _query("type", "An event type, or a prefix ending in `.*` or `.#` "
                       "(`leanix.factsheet.*`): the only wildcards (`%` and `_` match "
                       "themselves; `*` or `#` elsewhere is refused).", {"type": "string"}),
        _query("subject", "The subject: a Fact Sheet id, a job or run id.", {"type": "string"}),
        _query("status", "The event's latest status.", {"enum": list(STATUSES)}),
        _query("since", f"Received at or after. {TIME_TEXT}", {"type": "string"}),
        _query("until", f"Received before. {TIME_TEXT}", {"type": "string"}),
        _limit(),
        _cursor(),
    ]  # fmt: skip
    return _admin_operation(
        "list_events", "events:read", "Search the event log, newest first",
        json_response("A page of events.", ref("EventPage")),
        parameters=parameters, responses=_bad_query("type, limit, since, until or cursor"),
    )  # fmt: skip


def _get_event() -> Schema:
    parameters = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return _admin_operation(
        "get_event", "events:read", "One event with every handling attempt",
        json_response("The event.", ref("EventDetail")), parameters=parameters,
        responses={"404": problem(404, "No event with this id in the event log.")},
    )  # fmt: skip


def _list_runs() -> Schema:
    parameters = [
        _query("fact_sheet_id", "The Fact Sheet the run is about.", {"type": "string"}),
        _query("vendor", "The platform.", {"enum": list(VENDORS)}),
        _query("status", "The run's status.", {"enum": list(RUN_STATUSES)}),
        _limit(),
        _cursor("^[0-9]{1,18}$"),
    ]
    return _admin_operation(
        "list_runs", "runs:read", "Runs by Fact Sheet, vendor and status, newest first",
        json_response("A page of runs.", ref("RunPage")),
        parameters=parameters, responses=_bad_query("limit or cursor"),
    )  # fmt: skip


def _unavailable() -> Schema:
    return {"503": problem(503, "The store or the message broker is unavailable: retry "
                                "later.", RETRY_AFTER)}  # fmt: skip


def _list_dead_letters() -> Schema:
    parameters = [
        {**_query("id", "An event id; repeat it for several (`id=a&id=b`).",
                  {"type": "array", "items": {"type": "string"}}),
         "style": "form", "explode": True},
        _query("type", "An AMQP topic pattern of event types (`uipath.job.*`).",
               {"type": "string"}),
        _query("since", f"Dead-lettered at or after. {TIME_TEXT}", {"type": "string"}),
    ]  # fmt: skip
    return _admin_operation(
        "list_dead_letters", "events:read", "What the worker gave up on (taking nothing away)",
        json_response(f"Up to {MAX_LIMIT} dead letters.", ref("DeadLetterList")),
        parameters=parameters, responses={**_bad_query("since"), **_unavailable()},
    )  # fmt: skip


def _replay() -> Schema:
    body = {"required": True, "content": {JSON: {"schema": ref("ReplayRequest")}}}
    responses = {
        "400": problem(400, "The body is not a JSON object, a filter is invalid, or no "
                            'filter was given without `"all": true`.'),
        "413": problem(413, "The body is over `http.max_body_bytes`."),
        **_unavailable(),
    }  # fmt: skip
    return _admin_operation(
        "replay_dead_letters", "events:replay",
        "Publish matching dead letters back with their original ids",
        json_response("The ids replayed, in order.", ref("ReplayResult")),
        requestBody=body, responses=responses,
    )  # fmt: skip


def _list_rules() -> Schema:
    return _admin_operation(
        "list_rules", "rules:read", "The rules in force",
        json_response("The rules.", {"type": "object", "required": ["items"],
                                     "properties": {"items": {"type": "array",
                                                              "items": ref("Rule")}}}),
        responses={"400": problem(400, "The configured rules are invalid.")},
    )  # fmt: skip


def _status() -> Schema:
    return _admin_operation(
        "status",
        "status:read",
        "Broker, queue depths, runs in flight and event counts",
        json_response("The service's status.", ref("Status")),
    )


def _console_path() -> dict[str, Schema]:
    page = {
        "description": "The page. It carries no data; its inline script and style are "
        "allowed by hash in its Content-Security-Policy.",
        "headers": {"Content-Security-Policy": {"schema": {"type": "string"}}},
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    operation = {
        "operationId": "console",
        "tags": ["console"],
        "summary": "The operator console",
        "description": "Loads without a key. The operator types an admin key; the page sends "
        "it as `Authorization: Bearer` to /api/v1, whose scopes decide what each panel shows.",
        "security": [],
        "responses": {"200": page},
    }
    return {"/console": {"get": operation}}
