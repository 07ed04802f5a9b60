"""The `http` platform's callback endpoint in the OpenAPI document."""

from __future__ import annotations

from service.vendors.adapter import ApiDescription, Schema

_BODY: Schema = {
    "type": "object",
    "required": ["correlationId", "status"],
    "properties": {
        "correlationId": {
            "type": "string",
            "description": "The X-Correlation-Id header of the start call (or the value "
            "placed at the rule's correlation_pointer); the run token is bound to it.",
        },
        "status": {
            "type": "string",
            "description": "succeeded, failed, running or pending; also accepted: success, "
            "completed, done, error, failure, cancelled, queued, in_progress, in any case.",
        },
        "outputs": {"type": "object", "additionalProperties": True},
        "detail": {"type": ["string", "null"], "description": "Why it failed, for people."},
        "runId": {"type": "string", "description": "The endpoint's own id of the run."},
        "finishedAt": {"type": "string"},
    },
    "additionalProperties": True,
}

API = ApiDescription(
    summary="An HTTP-started run's completion callback (Power Automate, n8n, Jenkins, ...)",
    auth="A Standard Webhooks signature with a secret of sources.http.secrets, or "
    "`Authorization: Bearer <the run's callback token>` (given at callback_token_pointer).",
    body_name="HttpRunCallback",
    body=_BODY,
    security=({"standardWebhooks": []}, {"runToken": []}),
    security_schemes={
        "standardWebhooks": {"type": "apiKey", "in": "header", "name": "webhook-signature"},
        "runToken": {"type": "http", "scheme": "bearer"},
    },
)
