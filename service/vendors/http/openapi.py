"""The `http` platform's callback endpoint in the OpenAPI document."""

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
    "required": ["correlationId", "status"],
    "properties": {
        "correlationId": {
            "type": "string",
            "description": "The X-Correlation-Id header of the start call. " + RUN_TOKEN_ID,
        },
        "status": {
            "type": "string",
            "description": "succeeded, failed, running or pending; also accepted: success, "
            "completed, done, error, failure, cancelled, queued, in_progress, in any case.",
        },
        "outputs": OBJECT,
        "detail": {"type": ["string", "null"], "description": "Why it failed, for people."},
        "runId": {"type": "string", "description": "The endpoint's own id of the run."},
        "finishedAt": {"type": "string"},
    },
    "additionalProperties": True,
}

API = ApiDescription(
    summary="The completion callback of a run started by calling an HTTP endpoint",
    auth=SIGNED_OR_BEARER,
    body_name="HttpRunCallback",
    body=_BODY,
    security=SIGNED_OR_BEARER_SECURITY,
)
