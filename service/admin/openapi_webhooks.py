"""The webhook and callback endpoints in the OpenAPI document, and the bodies they accept.

One `Sender` per endpoint says how its sender authenticates and which schema its body
follows: LeanIX's here, each platform's from its adapter's `api` (service/vendors/).
Describes only; the receiver never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.admin.openapi_parts import JSON, OBJECT, Schema, json_response, problem, ref
from service.vendors import registry
from service.vendors.adapter import AnyPlatform


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


LEANIX = Sender("/webhooks/leanix", "webhooks", "A LeanIX PUSH webhook delivery", "LeanixEvent",
                [{"leanixAuthorization": []}],
                "`Authorization` must be one of the configured values (LeanIX signs nothing). "
                "Payload mode `DEFAULT` or `WRAPPED_EVENT`, or a body reshaped by a callback "
                "script; `NO_PAYLOAD` (`{}`) gets `400`.")  # fmt: skip


def _platform_sender(platform: AnyPlatform) -> Sender:
    api = platform.api
    security = [dict(alternative) for alternative in api.security]
    return Sender(
        platform.receiving.path, "callbacks", api.summary, api.body_name, security, api.auth
    )


SENDERS = (LEANIX, *(_platform_sender(p) for p in registry.PLATFORMS))


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
    bodies = {p.api.body_name: p.api.body for p in registry.PLATFORMS}
    return {"LeanixEvent": _leanix_event(), **bodies}


def security_schemes() -> dict[str, Schema]:
    """The platforms' own security schemes (Standard Webhooks and bearer are common)."""
    return {name: s for p in registry.PLATFORMS for name, s in p.api.security_schemes.items()}


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
