"""The admin API (`/api/v1`) and the console page in the OpenAPI document.

One operation per route in routes.ROUTES, the list the router is built from: its scope (in
its description and as `x-required-scope`), its parameters, its bodies (by class name;
openapi_schemas.py derives their schemas) and its refusals, plus the 401/403/503 every
admin call may get (auth.py). Describes only: no route reads it.
"""

from __future__ import annotations

import functools
import re

from service.admin import openapi_schemas
from service.admin.openapi_parts import JSON, Schema, json_response, problem, ref
from service.admin.routes import ROUTES, Param, Route

RETRY_AFTER: Schema = {
    "Retry-After": {
        "description": "Seconds to wait before calling again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
STORE_DOWN = "The store is unavailable (or start-up still waits for it): retry later."


def paths() -> dict[str, Schema]:
    """The admin API's paths, then the console's."""
    found: dict[str, Schema] = {}
    for route in ROUTES:
        found.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {**found, **_console_path()}


@functools.cache  # derived once (pydantic takes ~0.1 s), read on every /openapi.json
def schemas() -> dict[str, Schema]:
    """The routes' bodies, and each class they name, by class name."""
    requests = [route.body for route in ROUTES if route.body is not None]
    return openapi_schemas.schemas([route.answer for route in ROUTES], requests)


def _operation(route: Route) -> Schema:
    """An admin operation: bearer key, its scope required, its answer as 200."""
    operation: Schema = {
        "operationId": route.name,
        "tags": ["admin"],
        "summary": route.summary,
        "description": f"{route.summary}. Requires the scope `{route.scope}`.",
        "security": [{"adminKey": []}],
        "x-required-scope": route.scope,
        "responses": _responses(route),
    }
    parameters = _path_parameters(route.path) + [_query(param) for param in route.query]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        content = {JSON: {"schema": ref(route.body.__name__)}}
        operation["requestBody"] = {"required": True, "content": content}
    return operation


def _responses(route: Route) -> Schema:
    refusals = {
        401: "No admin key, or an unknown or revoked one.",
        403: f"The key lacks the scope `{route.scope}`, or may not be used from this address.",
        503: STORE_DOWN,
        **route.refusals,
    }
    return {
        "200": json_response(_described(route.answer), ref(route.answer.__name__)),
        **{
            str(status): problem(status, text, RETRY_AFTER if status == 503 else None)
            for status, text in sorted(refusals.items())
        },
    }


def _described(body: type) -> str:
    return (body.__doc__ or "").strip()


def _path_parameters(path: str) -> list[Schema]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query(param: Param) -> Schema:
    schema = {"type": "array", "items": param.schema} if param.repeated else dict(param.schema)
    parameter: Schema = {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": param.description,
        "schema": schema,
    }
    if param.repeated:
        parameter.update(style="form", explode=True)
    return parameter


def _console_path() -> dict[str, Schema]:
    page = {
        "description": "The page. It carries no data; its inline script and style are "
        "allowed by hash in its Content-Security-Policy.",
        "headers": {"Content-Security-Policy": {"schema": {"type": "string"}}},
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    operation = {
        "operationId": "console",
        "tags": ["console"],
        "summary": "The operator console",
        "description": "Loads without a key. The operator types an admin key; the page sends "
        "it as `Authorization: Bearer` to /api/v1, whose scopes decide what each panel shows.",
        "security": [],
        "responses": {"200": page},
    }
    return {"/console": {"get": operation}}
