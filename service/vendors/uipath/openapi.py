"""UiPath's webhook endpoint in the OpenAPI document."""

from __future__ import annotations

from service.vendors.adapter import ApiDescription
from service.vendors.openapi import OBJECT, header_key

API = ApiDescription(
    summary="An UiPath Orchestrator webhook",
    auth="`X-UiPath-Signature`: the base64 HMAC-SHA256 of the body with the webhook secret.",
    body_name="UiPathEvent",
    body={
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
    },
    security=({"uipathSignature": []},),
    security_schemes={
        "uipathSignature": header_key("X-UiPath-Signature", "Base64 HMAC-SHA256 of the raw body.")
    },
)
