"""The OpenAPI 3.1 document of every HTTP endpoint, served at /openapi.json.

Assembled here from its parts: openapi_webhooks.py (the webhook and callback endpoints,
each with how its sender authenticates and the body it posts), the probes below, and
openapi_admin.py (the admin API, `/api/v1`, built from the route list in routes.py with
the bodies' schemas derived from their classes, and the console). This module adds the
info, tags, security schemes and shared schemas. It describes; it never decides: no route
reads this document.
tests/integration/test_openapi.py holds it to the live routes with schemathesis, so a
route changed without its document fails there.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.admin import openapi_admin, openapi_webhooks
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
                **openapi_admin.schemas(),
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
    schemes: dict[str, Schema] = {
        name: {"type": "apiKey", "in": "header", "name": header, "description": description}
        for name, header, description in HEADER_KEYS
    }
    schemes.update(openapi_webhooks.security_schemes())  # the platforms' own
    schemes["callbackBearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "The run's own callback token (the `callbackToken` variable / "
        "`callback.token` it was started with), checked against the body's `correlationId`.",
    }
    schemes["adminKey"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lxb_<id>_<secret>",
        "description": "An admin key from `python -m service keys create`.",
    }
    return schemes


HEADER_KEYS = (  # security scheme, header, what it carries
    (
        "leanixAuthorization",
        "Authorization",
        "One of the values configured in `LEANIX_WEBHOOK_AUTHORIZATION`, e.g. `Bearer 3f9c…`.",
    ),
    ("webhookId", "webhook-id", "Standard Webhooks: unique per message; a retry re-uses it."),
    ("webhookTimestamp", "webhook-timestamp", "Standard Webhooks: unix seconds."),
    (
        "webhookSignature",
        "webhook-signature",
        "Standard Webhooks: space-separated "
        '`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.',
    ),
)


def _common_schemas() -> dict[str, Schema]:
    problem_schema = {
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
    }
    event_id = "The event's id: a UUIDv5 of the sender's own event id, or of the body."
    accepted = {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "description": event_id},
            "status": {"const": "accepted"},
        },
        "additionalProperties": False,
    }
    return {"Problem": problem_schema, "Accepted": accepted}


def _probe_paths() -> dict[str, Schema]:
    alive = {"200": json_response("Alive.", _status("ok"))}
    ready = {
        "200": json_response("Ready.", _status("ready")),
        "503": problem(503, "Not connected to the message broker."),
    }
    text = {"text/plain": {"schema": {"type": "string"}}}
    metrics = {"200": {"description": "Prometheus exposition text.", "content": text}}
    this = {"type": "object", "required": ["openapi", "info", "paths"]}
    return {
        "/healthz": _probe("healthz", "Liveness: 200 while the process runs", alive),
        "/readyz": _probe(
            "readyz", "Readiness: connected to RabbitMQ with the topology declared", ready
        ),
        "/metrics": _probe(
            "metrics", "Prometheus metrics (expose on an internal network only)", metrics
        ),
        "/openapi.json": _probe(
            "openapi", "This document", {"200": json_response("The OpenAPI 3.1 document.", this)}
        ),
    }


def _probe(operation_id: str, summary: str, responses: Schema) -> Schema:
    operation = {"operationId": operation_id, "tags": ["probes"], "summary": summary}
    return {"get": {**operation, "security": [], "responses": responses}}


def _status(value: str) -> Schema:
    return {"type": "object", "required": ["status"], "properties": {"status": {"const": value}}}
