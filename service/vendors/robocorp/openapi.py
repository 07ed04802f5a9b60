"""Robocorp's webhook and run callback endpoint in the OpenAPI document."""

from __future__ import annotations

from service.vendors.adapter import ApiDescription, Schema
from service.vendors.openapi import header_key

_BODY: Schema = {
    "type": "object",
    "required": ["event"],
    "properties": {
        "id": {"type": ["string", "integer"]},
        "event": {"type": "string", "minLength": 1, "examples": ["process_run.completed"]},
        "webhookEventTimestamp": {"type": "string"},
        "payload": {
            "type": "object",
            "properties": {
                "workspaceId": {"type": "string"},
                "processId": {"type": "string"},
                "processRunId": {"type": "string"},
                "state": {"type": "string"},
            },
            "additionalProperties": True,
        },
    },
    "additionalProperties": True,
}

API = ApiDescription(
    summary="A Robocorp Control Room webhook or run callback",
    auth="`x-rc-signature`: the hex HMAC-SHA256 of the body with the webhook secret.",
    body_name="RobocorpEvent",
    body=_BODY,
    security=({"robocorpSignature": []},),
    security_schemes={
        "robocorpSignature": header_key("x-rc-signature", "Hex HMAC-SHA256 of the raw body.")
    },
)
