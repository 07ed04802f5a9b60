"""The OpenAPI 3.1 document of every HTTP endpoint, served at /openapi.json.

Built from small pieces: the webhook and callback endpoints (each with how its sender
authenticates and the body it posts), the probes, and the admin API (`/api/v1`, one scope
per operation, in its description and as `x-required-scope`). It describes; it never
decides: no route reads this document. tests/integration/test_openapi.py holds it to the
live routes with schemathesis, so a route changed without its document fails there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from service.admin.api import MAX_LIMIT, VERSION
from service.automation.rules import VENDORS
from service.store.eventlog import STATUSES

Schema = dict[str, Any]

JSON = "application/json"
PROBLEM = "application/problem+json"
RUN_STATUSES = ("starting", "running", "completed", "written_back")
RUN_OUTCOMES = ("pending", "running", "succeeded", "failed")
ATTEMPT_OUTCOMES = ("ok", "retry", "dead_letter", "skipped")
TIME_TEXT = "An ISO 8601 time (UTC when it has no offset), or an age like `30m`, `2h`, `1d`."

OBJECT: Schema = {"type": "object", "additionalProperties": True}
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "tags": _tags(),
        "paths": {**_webhook_paths(), **_probe_paths(), **_admin_paths(), **_console_path()},
        "components": {
            "schemas": {**_common_schemas(), **_sender_schemas(), **_admin_schemas()},
            "securitySchemes": _security_schemes(),
        },
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", serve)


# --- building blocks -----------------------------------------------------------------------


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


def _json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _problem(status: int, description: str, headers: Schema | None = None) -> Schema:
    """A problem+json response whose `status` member is the HTTP status."""
    schema = {"allOf": [_ref("Problem"), {"properties": {"status": {"const": status}}}]}
    response: Schema = {"description": description, "content": {PROBLEM: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _info() -> Schema:
    return {
        "title": "leanix-bridge",
        "version": VERSION,
        "summary": "Receives LeanIX webhooks and automation run callbacks; publishes them "
        "durably to RabbitMQ as CloudEvents.",
        "description": (
            "A `202` means the event is in RabbitMQ: persistent and confirmed by the broker "
            "before the answer was sent. Every refusal is `application/problem+json` "
            "(RFC 9457) and publishes nothing. Signatures are checked on the raw body bytes. "
            "A source with no credential configured is closed: it answers `404`."
        ),
    }


def _tags() -> list[Schema]:
    return [
        {"name": "webhooks", "description": "Events from SAP LeanIX."},
        {"name": "callbacks", "description": "Run completions from the automation platforms."},
        {"name": "probes", "description": "Liveness, readiness, metrics and this document."},
        {
            "name": "admin",
            "description": "The admin API, served when the receiver has a store: "
            "`Authorization: Bearer <admin key>`.",
        },
        {"name": "console", "description": "The operator console, a page over the admin API."},
    ]


# --- webhooks and callbacks ----------------------------------------------------------------

STANDARD_WEBHOOKS: Schema = {"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}
SIGNED_OR_BEARER = (
    "Standard Webhooks (`webhook-id`, `webhook-timestamp` within ±5 min, `webhook-signature: "
    'v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`), or `Authorization: Bearer '
    "<token>`. With a bearer token, send `webhook-id` if you can: it becomes the event's "
    "identity (otherwise the body's hash does)."
)


@dataclass(frozen=True)
class Sender:
    """One webhook or callback endpoint, as documented."""

    path: str
    tag: str
    summary: str
    body: str  # the name of its request body schema
    security: list[Schema]
    auth: str  # how it authenticates, in words

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


SENDERS = (
    Sender("/webhooks/leanix", "webhooks", "A LeanIX PUSH webhook delivery", "LeanixEvent",
           [{"leanixAuthorization": []}],
           "`Authorization` must be one of the configured values (LeanIX signs nothing). "
           "Payload mode `DEFAULT` or `WRAPPED_EVENT`, or a body reshaped by a callback "
           "script; `NO_PAYLOAD` (`{}`) gets `400`."),
    Sender("/callbacks/uipath", "callbacks", "An UiPath Orchestrator webhook", "UiPathEvent",
           [{"uipathSignature": []}],
           "`X-UiPath-Signature`: the base64 HMAC-SHA256 of the body with the webhook secret."),
    Sender("/callbacks/robocorp", "callbacks", "A Robocorp Control Room webhook or run "
           "callback", "RobocorpEvent", [{"robocorpSignature": []}],
           "`x-rc-signature`: the hex HMAC-SHA256 of the body with the webhook secret."),
    Sender("/callbacks/leapwork", "callbacks", "A Leapwork flow's completion callback",
           "LeapworkCallback", [STANDARD_WEBHOOKS, {"callbackBearer": []}], SIGNED_OR_BEARER),
    Sender("/callbacks/workato", "callbacks", "A Workato recipe's completion callback",
           "WorkatoCallback", [STANDARD_WEBHOOKS, {"callbackBearer": []}], SIGNED_OR_BEARER),
)  # fmt: skip


def _webhook_paths() -> dict[str, Schema]:
    return {sender.path: {"post": _sender_operation(sender)} for sender in SENDERS}


def _sender_operation(sender: Sender) -> Schema:
    return {
        "operationId": f"receive_{sender.name}",
        "tags": [sender.tag],
        "summary": sender.summary,
        "description": f"{sender.auth}\n\nThe body is published unchanged as the `data` of "
        "a CloudEvent; the answer is sent once the broker confirmed it.",
        "security": sender.security,
        "requestBody": {
            "required": True,
            "description": "JSON (`application/json` or `application/*+json`).",
            "content": {JSON: {"schema": _ref(sender.body)}},
        },
        "responses": _sender_responses(sender.name),
    }


def _sender_responses(name: str) -> Schema:
    retry_after = {"Retry-After": {
        "description": "Seconds to wait before sending the event again.", "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }}  # fmt: skip
    return {
        "202": _json_response("The broker confirmed the persistent event.", _ref("Accepted")),
        "400": _problem(400, "The body is empty, not JSON, not an object, cannot be read, or "
                             f"cannot be an event of {name} (its type is over 255 bytes)."),
        "401": _problem(401, "Missing or wrong credentials, a bad signature, or a Standard "
                             "Webhooks timestamp outside the tolerance."),
        "404": _problem(404, f"The {name} source is not enabled (no credential configured)."),
        "413": _problem(413, "The body is over `http.max_body_bytes`."),
        "415": _problem(415, "The `Content-Type` is not `application/json` or "
                             "`application/*+json`, or the body is compressed "
                             "(`Content-Encoding`: signatures cover the bytes sent)."),
        "503": _problem(503, "The broker is down or did not confirm in time; nothing was "
                             "published: send it again later.", retry_after),
    }  # fmt: skip


def _security_schemes() -> dict[str, Schema]:
    def header(name: str, description: str) -> Schema:
        return {"type": "apiKey", "in": "header", "name": name, "description": description}

    return {
        "leanixAuthorization": header("Authorization", "One of the values configured in "
                                      "`LEANIX_WEBHOOK_AUTHORIZATION`, e.g. `Bearer 3f9c…`."),
        "uipathSignature": header("X-UiPath-Signature", "Base64 HMAC-SHA256 of the raw body."),
        "robocorpSignature": header("x-rc-signature", "Hex HMAC-SHA256 of the raw body."),
        "webhookId": header("webhook-id", "Standard Webhooks: unique per message; a retry "
                            "re-uses it."),
        "webhookTimestamp": header("webhook-timestamp", "Standard Webhooks: unix seconds."),
        "webhookSignature": header("webhook-signature", "Standard Webhooks: space-separated "
                                   '`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.'),
        "callbackBearer": {"type": "http", "scheme": "bearer",
                           "description": "A token from `*_CALLBACK_TOKEN`."},
        "adminKey": {"type": "http", "scheme": "bearer", "bearerFormat": "lxb_<id>_<secret>",
                     "description": "An admin key from `python -m service keys create`."},
    }  # fmt: skip


def _common_schemas() -> dict[str, Schema]:
    return {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "format": "uri-reference", "default": "about:blank"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string", "description": "What is wrong, and what to do."},
                "instance": {"type": "string", "format": "uri-reference"},
            },
            "additionalProperties": True,
        },
        "Accepted": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string", "format": "uuid", "description": "The event's id: "
                       "a UUIDv5 of the sender's own event id, or of the body."},
                "status": {"const": "accepted"},
            },
            "additionalProperties": False,
        },
    }  # fmt: skip


def _sender_schemas() -> dict[str, Schema]:
    return {
        "LeanixEvent": _leanix_event(),
        "UiPathEvent": _uipath_event(),
        "RobocorpEvent": _robocorp_event(),
        "LeapworkCallback": _leapwork_callback(),
        "WorkatoCallback": _workato_callback(),
    }


def _leanix_event() -> Schema:
    return {
        "type": "object",
        "description": "A Fact Sheet (or relation, tag, document, …) event. Only the known "
        "fields are listed; everything else is kept.",
        "minProperties": 1,
        "properties": {
            "id": {"type": ["integer", "string"], "description": "The event id in the workspace."},
            "type": {"type": "string", "examples": ["FactSheetCreatedEvent", "FACT_SHEET_UPDATED"]},
            "workspaceId": {"type": "string"},
            "userId": {"type": "string"},
            "createdAt": {"type": "string", "description": "When it happened (ISO 8601)."},
            "factSheet": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                               "type": {"type": "string"}, "rev": {"type": "integer"}},
                "additionalProperties": True,
            },
            "relation": OBJECT,
            "transactionSequenceNumber": {"type": "integer"},
            "payload": {**OBJECT, "description": "WRAPPED_EVENT mode: the event itself."},
        },
        "additionalProperties": True,
    }  # fmt: skip


def _uipath_event() -> Schema:
    return {
        "type": "object",
        "required": ["Type"],
        "properties": {
            "Type": {"type": "string", "pattern": r"\.", "examples": ["job.completed"]},
            "EventId": {"type": ["string", "integer"]},
            "Timestamp": {"type": "string"},
            "TenantId": {"type": ["integer", "string"]},
            "OrganizationUnitId": {"type": ["integer", "string"]},
            "Job": OBJECT,
            "Jobs": {"type": "array", "items": OBJECT},
        },
        "additionalProperties": True,
    }


def _robocorp_event() -> Schema:
    return {
        "type": "object",
        "required": ["event"],
        "properties": {
            "id": {"type": ["string", "integer"]},
            "event": {"type": "string", "minLength": 1, "examples": ["process_run.completed"]},
            "webhookEventTimestamp": {"type": "string"},
            "payload": {
                "type": "object",
                "properties": {"workspaceId": {"type": "string"}, "processId": {"type": "string"},
                               "processRunId": {"type": "string"}, "state": {"type": "string"}},
                "additionalProperties": True,
            },
        },
        "additionalProperties": True,
    }  # fmt: skip


def _leapwork_callback() -> Schema:
    return {
        "type": "object",
        "required": ["runId"],
        "properties": {
            "runId": {"type": "string", "minLength": 1, "description": "The run's RunId."},
            "scheduleId": {"type": "string"},
            "status": {"type": "string", "examples": ["Finished"]},
            "result": {"type": "string", "examples": ["Passed", "Failed"]},
            "correlationId": {"type": "string"},
            "finishedAt": {"type": "string"},
            "outputs": OBJECT,
        },
        "additionalProperties": True,
    }


def _workato_callback() -> Schema:
    return {
        "type": "object",
        "required": ["status"],
        "anyOf": [{"required": ["jobId"]}, {"required": ["correlationId"]}],
        "properties": {
            "status": {"enum": ["completed", "failed"], "description": "Also accepted: "
                       "succeeded, success, error, in any case."},
            "jobId": {"type": ["string", "integer"]},
            "correlationId": {"type": "string"},
            "completedAt": {"type": "string"},
            "outputs": OBJECT,
            "error": {"type": "string", "description": "When failed."},
        },
        "additionalProperties": True,
    }  # fmt: skip


# --- probes --------------------------------------------------------------------------------


def _probe_paths() -> dict[str, Schema]:
    def status(value: str) -> Schema:
        return {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": value}},
        }

    def get(operation_id: str, summary: str, responses: Schema) -> Schema:
        return {"get": {"operationId": operation_id, "tags": ["probes"], "summary": summary,
                        "security": [], "responses": responses}}  # fmt: skip

    metrics = {"description": "Prometheus exposition text.",
               "content": {"text/plain": {"schema": {"type": "string"}}}}  # fmt: skip
    document_schema = {"type": "object", "required": ["openapi", "info", "paths"]}
    return {
        "/healthz": get("healthz", "Liveness: 200 while the process runs",
                        {"200": _json_response("Alive.", status("ok"))}),
        "/readyz": get("readyz", "Readiness: connected to RabbitMQ with the topology declared",
                       {"200": _json_response("Ready.", status("ready")),
                        "503": _problem(503, "Not connected to the message broker.")}),
        "/metrics": get("metrics", "Prometheus metrics (expose on an internal network only)",
                        {"200": metrics}),
        "/openapi.json": get("openapi", "This document",
                             {"200": _json_response("The OpenAPI 3.1 document.", document_schema)}),
    }  # fmt: skip


# --- the admin API -------------------------------------------------------------------------


def _admin_operation(
    operation_id: str, scope: str, summary: str, ok: Schema, **extra: Any
) -> Schema:
    """An admin operation: bearer key, `scope` required, 401/403 and `ok` as 200."""
    responses: Schema = {
        "200": ok,
        "401": _problem(401, "No admin key, or an unknown or revoked one."),
        "403": _problem(403, f"The key lacks the scope `{scope}`, or may not be used from "
                             "this address."),
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


def _limit() -> Schema:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}
    return _query("limit", "Page size.", schema)


def _cursor(pattern: str | None = None) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    return _query("cursor", "The `next_cursor` of the previous page.", schema)


def _bad_query(what: str) -> Schema:
    return {"400": _problem(400, f"A query parameter is invalid: {what}.")}


def _list_events() -> Schema:
    parameters = [
        _query("type", "An event type, or a prefix ending in `.*` or `.#` "
                       "(`leanix.factsheet.*`).", {"type": "string"}),
        _query("subject", "The subject: a Fact Sheet id, a job or run id.", {"type": "string"}),
        _query("status", "The event's latest status.", {"enum": list(STATUSES)}),
        _query("since", f"Received at or after. {TIME_TEXT}", {"type": "string"}),
        _query("until", f"Received before. {TIME_TEXT}", {"type": "string"}),
        _limit(),
        _cursor(),
    ]  # fmt: skip
    return _admin_operation(
        "list_events", "events:read", "Search the event log, newest first",
        _json_response("A page of events.", _ref("EventPage")),
        parameters=parameters, responses=_bad_query("limit, since, until or cursor"),
    )  # fmt: skip


def _get_event() -> Schema:
    parameters = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return _admin_operation(
        "get_event", "events:read", "One event with every handling attempt",
        _json_response("The event.", _ref("EventDetail")), parameters=parameters,
        responses={"404": _problem(404, "No event with this id in the event log.")},
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
        _json_response("A page of runs.", _ref("RunPage")),
        parameters=parameters, responses=_bad_query("limit or cursor"),
    )  # fmt: skip


def _unavailable() -> Schema:
    return {"503": _problem(503, "Not connected to the message broker; retry later.")}


def _list_dead_letters() -> Schema:
    parameters = [
        _query("id", "One event id.", {"type": "string"}),
        _query("type", "An AMQP topic pattern of event types (`uipath.job.*`).",
               {"type": "string"}),
        _query("since", f"Dead-lettered at or after. {TIME_TEXT}", {"type": "string"}),
    ]  # fmt: skip
    return _admin_operation(
        "list_dead_letters", "events:read", "What the worker gave up on (taking nothing away)",
        _json_response(f"Up to {MAX_LIMIT} dead letters.", _ref("DeadLetterList")),
        parameters=parameters, responses={**_bad_query("since"), **_unavailable()},
    )  # fmt: skip


def _replay() -> Schema:
    body = {"required": True, "content": {JSON: {"schema": _ref("ReplayRequest")}}}
    responses = {
        "400": _problem(400, "The body is not a JSON object, a filter is invalid, or no "
                             'filter was given without `"all": true`.'),
        "413": _problem(413, "The body is over `http.max_body_bytes`."),
        **_unavailable(),
    }  # fmt: skip
    return _admin_operation(
        "replay_dead_letters", "events:replay",
        "Publish matching dead letters back with their original ids",
        _json_response("The ids replayed, in order.", _ref("ReplayResult")),
        requestBody=body, responses=responses,
    )  # fmt: skip


def _list_rules() -> Schema:
    return _admin_operation(
        "list_rules", "rules:read", "The rules in force",
        _json_response("The rules.", {"type": "object", "required": ["items"],
                                      "properties": {"items": {"type": "array",
                                                               "items": _ref("Rule")}}}),
        responses={"400": _problem(400, "The configured rules are invalid.")},
    )  # fmt: skip


def _status() -> Schema:
    return _admin_operation(
        "status",
        "status:read",
        "Broker, queue depths, runs in flight and event counts",
        _json_response("The service's status.", _ref("Status")),
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


# --- admin schemas -------------------------------------------------------------------------


def _admin_schemas() -> dict[str, Schema]:
    return {
        "LoggedEvent": _logged_event(),
        "Attempt": _attempt(),
        "EventPage": _page("LoggedEvent"),
        "EventDetail": {"allOf": [_ref("LoggedEvent"), {
            "type": "object", "required": ["attempt_log"],
            "properties": {"attempt_log": {"type": "array", "items": _ref("Attempt")}},
        }]},
        "Run": _run(),
        "RunPage": _page("Run"),
        "DeadLetter": _dead_letter(),
        "DeadLetterList": {"type": "object", "required": ["items"],
                           "properties": {"items": {"type": "array", "items": _ref("DeadLetter")}}},
        "ReplayRequest": _replay_request(),
        "ReplayResult": {"type": "object", "required": ["replayed"],
                         "properties": {"replayed": STRINGS}},
        "Rule": _rule(),
        "Outcome": _outcome(),
        "Status": _status_schema(),
    }  # fmt: skip


def _object(properties: Schema) -> Schema:
    """An object that always has all these properties."""
    return {"type": "object", "required": list(properties), "properties": properties}


def _page(item: str) -> Schema:
    return _object({"items": {"type": "array", "items": _ref(item)},
                    "next_cursor": {**_nullable("string"),
                                    "description": "null on the last page"}})  # fmt: skip


def _logged_event() -> Schema:
    return _object({
        "id": {"type": "string"}, "type": {"type": "string"}, "source": {"type": "string"},
        "subject": _nullable("string"), "time": _nullable("string"),
        "received_at": {"type": "number", "description": "unix seconds"},
        "updated_at": {"type": "number"}, "status": {"enum": list(STATUSES)},
        "attempts": {"type": "integer", "minimum": 0}, "last_error": _nullable("string"),
        "data": {"description": "The event's data, or null when it was too large to keep."},
    })  # fmt: skip


def _attempt() -> Schema:
    return _object({
        "handler": {"type": "string"}, "attempt": {"type": "integer"},
        "outcome": {"enum": list(ATTEMPT_OUTCOMES)}, "error": _nullable("string"),
        "at": {"type": "number"}, "duration_ms": {"type": "number"},
    })  # fmt: skip


def _run() -> Schema:
    return _object({
        "id": {"type": "integer"}, "correlation_id": {"type": "string"},
        "vendor": {"enum": list(VENDORS)}, "rule": {"type": "string"},
        "event_id": {"type": "string"}, "status": {"enum": list(RUN_STATUSES)},
        "started_at": {"type": "number"}, "run_id": _nullable("string"),
        "fact_sheet_id": _nullable("string"), "target": OBJECT, "inputs": OBJECT,
        "outcome": {"enum": [*RUN_OUTCOMES, None]}, "vendor_state": _nullable("string"),
        "outputs": OBJECT, "detail": _nullable("string"), "run_url": _nullable("string"),
        "completed_by": _nullable("string"), "completed_at": _nullable("number"),
        "written_back_at": _nullable("number"), "next_poll_at": _nullable("number"),
        "poll_count": {"type": "integer", "minimum": 0},
    })  # fmt: skip


def _dead_letter() -> Schema:
    return _object({
        "id": {"type": "string"}, "type": {"type": "string"},
        "attempts": _nullable("integer"), "dead_lettered_at": _nullable("string"),
        "failed_handlers": STRINGS, "error": _nullable("string"),
    })  # fmt: skip


def _replay_request() -> Schema:
    return {
        "type": "object",
        "description": 'Give `ids`, `id`, `type` or `since`, or `"all": true` to replay '
        "every dead letter.",
        "properties": {
            "ids": STRINGS, "id": {"type": "string"},
            "type": {"type": "string", "description": "An AMQP topic pattern of event types."},
            "since": {"type": "string", "description": f"Dead-lettered since. {TIME_TEXT}"},
            "all": {"type": "boolean"},
        },
        "additionalProperties": True,
    }  # fmt: skip


def _rule() -> Schema:
    when = _object({"fact_sheet_types": STRINGS, "tags": STRINGS, "lifecycle_phases": STRINGS,
                    "fields": OBJECT})  # fmt: skip
    write_back = _object({"comment": _nullable("string"), "on_success": _ref("Outcome"),
                          "on_failure": _ref("Outcome")})  # fmt: skip
    return _object({
        "name": {"type": "string"}, "patterns": STRINGS, "vendor": {"enum": list(VENDORS)},
        "target": OBJECT, "inputs": OBJECT, "when": when, "write_back": write_back,
        "dry_run": {"type": "boolean"},
    })  # fmt: skip


def _outcome() -> Schema:
    return _object({"fields": OBJECT, "tags": STRINGS,
                    "lifecycle": {"type": "object", "additionalProperties": {"type": "string"}},
                    "lx_state": _nullable("string")})  # fmt: skip


def _status_schema() -> Schema:
    broker = _object({"ready": {"type": "boolean"}, "queues": COUNTS})
    events = {**COUNTS, "propertyNames": {"enum": list(STATUSES)}}
    return _object({"version": {"type": "string"}, "broker": broker, "runs_in_flight": COUNTS,
                    "events_last_24h": events})  # fmt: skip
