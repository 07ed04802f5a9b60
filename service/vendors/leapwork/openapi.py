"""Leapwork's callback endpoint in the OpenAPI document."""

from __future__ import annotations

from service.vendors.adapter import ApiDescription
from service.vendors.openapi import (
    OBJECT,
    RUN_TOKEN_ID,
    SIGNED_OR_BEARER,
    SIGNED_OR_BEARER_SECURITY,
)

API = ApiDescription(
    summary="A Leapwork flow's completion callback",
    auth=SIGNED_OR_BEARER,
    body_name="LeapworkCallback",
    body={
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
    },
    security=SIGNED_OR_BEARER_SECURITY,
)
