"""The webhook and callback endpoints in the OpenAPI document, and the bodies they accept.

One `Sender` per endpoint says how its sender authenticates and which schema its body
follows: LeanIX, UiPath, Robocorp, Leapwork and Workato. Describes only; the receiver
never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.admin.openapi_parts import JSON, OBJECT, Schema, json_response, problem, ref

STANDARD_WEBHOOKS: Schema = {"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}
SIGNED_OR_BEARER = (
    "Standard Webhooks (`webhook-id`, `webhook-timestamp` within ±5 min, `webhook-signature: "
    'v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`), or `Authorization: Bearer '
    "<the run's own token>` (given to the run with the callback URL), which needs the run's "
    "`correlationId` in the body. With a token, send `webhook-id` if you can: it becomes "
    "the event's identity (otherwise the body's hash does)."
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


def paths() -> dict[str, Schema]:
    """One POST path per sender."""
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
            "content": {JSON: {"schema": ref(sender.body)}},
        },
        "responses": _sender_responses(sender.name),
    }


def _sender_responses(name: str) -> Schema:
    retry_after = {"Retry-After": {
        "description": "Seconds to wait before sending the event again.", "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }}  # fmt: skip
    return {
        "202": json_response("The broker confirmed the persistent event.", ref("Accepted")),
        "400": problem(400, "The body is empty, not JSON, not an object, cannot be read, or "
                            f"cannot be an event of {name} (its type is over 255 bytes)."),
        "401": problem(401, "Missing or wrong credentials, a bad signature, or a Standard "
                            "Webhooks timestamp outside the tolerance."),
        "404": problem(404, f"The {name} source is not enabled (no credential configured)."),
        "413": problem(413, "The body is over `http.max_body_bytes`."),
        "415": problem(415, "The `Content-Type` is not `application/json` or "
                            "`application/*+json`, or the body is compressed "
                            "(`Content-Encoding`: signatures cover the bytes sent)."),
        "503": problem(503, "The broker is down or did not confirm in time; nothing was "
                            "published: send it again later.", retry_after),
    }  # fmt: skip


def schemas() -> dict[str, Schema]:
    """The body each sender posts, by the name its `Sender` gives."""
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


RUN_TOKEN_ID = "The run's correlation id; required with a run's token, which is checked against it."


def _leapwork_callback() -> Schema:
    return {
        "type": "object",
        "required": ["runId"],
        "properties": {
            "runId": {"type": "string", "minLength": 1, "description": "The run's RunId."},
            "scheduleId": {"type": "string"},
            "status": {"type": "string", "examples": ["Finished"]},
            "result": {"type": "string", "examples": ["Passed", "Failed"]},
            "correlationId": {"type": "string", "description": RUN_TOKEN_ID},
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
            "correlationId": {"type": "string", "description": RUN_TOKEN_ID},
            "completedAt": {"type": "string"},
            "outputs": OBJECT,
            "error": {"type": "string", "description": "When failed."},
        },
        "additionalProperties": True,
    }  # fmt: skip
