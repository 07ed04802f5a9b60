"""The OpenAPI 3.1 document of every HTTP endpoint, served at /openapi.json.

Assembled here from its parts: openapi_webhooks.py (the webhook and callback endpoints,
each with how its sender authenticates and the body it posts), the probes below, and
openapi_admin.py with openapi_admin_schemas.py (the admin API, `/api/v1`, one scope per
operation, and the console). This module adds the info, tags, security schemes and shared
schemas. It describes; it never decides: no route reads this document.
tests/integration/test_openapi.py holds it to the live routes with schemathesis, so a
route changed without its document fails there.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.admin import openapi_admin, openapi_admin_schemas, openapi_webhooks
from service.admin.api import VERSION
from service.admin.openapi_parts import Schema, json_response, problem


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "tags": _tags(),
        "paths": {**openapi_webhooks.paths(), **_probe_paths(), **openapi_admin.paths()},
        "components": {
            "schemas": {
                **_common_schemas(),
                **openapi_webhooks.schemas(),
                **openapi_admin_schemas.schemas(),
            },
            "securitySchemes": _security_schemes(),
        },
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", serve)


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


def _security_schemes() -> dict[str, Schema]:
    def header(name: str, description: str) -> Schema:
        return {"type": "apiKey", "in": "header", "name": name, "description": description}

    return {
        "leanixAuthorization": header("Authorization", "One of the values configured in "
                                      "`LEANIX_WEBHOOK_AUTHORIZATION`, e.g. `Bearer 3f9c…`."),
        **openapi_webhooks.security_schemes(),
        "webhookId": header("webhook-id", "Standard Webhooks: unique per message; a retry "
                            "re-uses it."),
        "webhookTimestamp": header("webhook-timestamp", "Standard Webhooks: unix seconds."),
        "webhookSignature": header("webhook-signature", "Standard Webhooks: space-separated "
                                   '`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.'),
        "callbackBearer": {"type": "http", "scheme": "bearer",
                           "description": "The run's own callback token (the `callbackToken` "
                           "variable / `callback.token` it was started with), checked "
                           "against the body's `correlationId`."},
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
                        {"200": json_response("Alive.", status("ok"))}),
        "/readyz": get("readyz", "Readiness: connected to RabbitMQ with the topology declared",
                       {"200": json_response("Ready.", status("ready")),
                        "503": problem(503, "Not connected to the message broker.")}),
        "/metrics": get("metrics", "Prometheus metrics (expose on an internal network only)",
                        {"200": metrics}),
        "/openapi.json": get("openapi", "This document",
                             {"200": json_response("The OpenAPI 3.1 document.", document_schema)}),
    }  # fmt: skip
