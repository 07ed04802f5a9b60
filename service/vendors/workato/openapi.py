"""Workato's callback endpoint in the OpenAPI document."""

from __future__ import annotations

from service.vendors.adapter import ApiDescription, Schema
from service.vendors.openapi import (
    OBJECT,
    RUN_TOKEN_ID,
    SIGNED_OR_BEARER,
    SIGNED_OR_BEARER_SECURITY,
)

_BODY: Schema = {
    "type": "object",
    "required": ["status"],
    "anyOf": [{"required": ["jobId"]}, {"required": ["correlationId"]}],
    "properties": {
        "status": {
            "enum": ["completed", "failed"],
            "description": "Also accepted: succeeded, success, error, in any case.",
        },
        "jobId": {"type": ["string", "integer"]},
        "correlationId": {"type": "string", "description": RUN_TOKEN_ID},
        "completedAt": {"type": "string"},
        "outputs": OBJECT,
        "error": {"type": "string", "description": "When failed."},
    },
    "additionalProperties": True,
}

API = ApiDescription(
    summary="A Workato recipe's completion callback",
    auth=SIGNED_OR_BEARER,
    body_name="WorkatoCallback",
    body=_BODY,
    security=SIGNED_OR_BEARER_SECURITY,
)
