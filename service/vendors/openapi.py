"""The pieces platforms' OpenAPI descriptions share (adapter.ApiDescription), as dicts.

Describes only: nothing in the receiver reads it.
"""

from __future__ import annotations

from service.vendors.adapter import Schema

OBJECT: Schema = {"type": "object", "additionalProperties": True}

# A callback authenticated by adapter.signed_or_run_token: either alternative will do.
STANDARD_WEBHOOKS: Schema = {"webhookId": [], "webhookTimestamp": [], "webhookSignature": []}
SIGNED_OR_BEARER_SECURITY: tuple[Schema, ...] = (STANDARD_WEBHOOKS, {"callbackBearer": []})
SIGNED_OR_BEARER = (
    "Standard Webhooks (`webhook-id`, `webhook-timestamp` within ±5 min, `webhook-signature: "
    'v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`), or `Authorization: Bearer '
    "<the run's own token>` (given to the run with the callback URL), which needs the run's "
    "`correlationId` in the body. With a token, send `webhook-id` if you can: it becomes "
    "the event's identity (otherwise the body's hash does)."
)
RUN_TOKEN_ID = "The run's correlation id; required with a run's token, which is checked against it."


def header_key(name: str, description: str) -> Schema:
    """A security scheme: a credential in one request header."""
    return {"type": "apiKey", "in": "header", "name": name, "description": description}
