"""Problem details (RFC 9457): every error answer says what is wrong, as JSON."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

CONTENT_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type=CONTENT_TYPE,
        headers=headers,
    )
