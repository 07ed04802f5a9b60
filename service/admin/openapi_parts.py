"""The pieces every part of the OpenAPI document uses: media types, `$ref`s and responses.

A leaf: openapi.py, openapi_webhooks.py and openapi_admin.py import it; it imports none of
them, so they never import each other in a cycle.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

JSON = "application/json"
PROBLEM = "application/problem+json"

OBJECT: Schema = {"type": "object", "additionalProperties": True}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def problem(status: int, description: str, headers: Schema | None = None) -> Schema:
    """A problem+json response whose `status` member is the HTTP status."""
    schema = {"allOf": [ref("Problem"), {"properties": {"status": {"const": status}}}]}
    response: Schema = {"description": description, "content": {PROBLEM: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response
