"""Admin authentication: `Authorization: Bearer <key>`, a scope per route, an IP allow-list.

    no key, or a wrong / revoked one  -> 401
    a key without the route's scope   -> 403
    a call from outside the key's networks -> 403
    the store down, or silent for VERIFY_TIMEOUT_S -> 503 + Retry-After (admin/failures.py)

Every admin call is logged with the key's name (never the key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from service.admin import failures
from service.problems import problem
from service.store import Database
from service.store.keys import ApiKey

log = structlog.get_logger("service.admin")

DATABASE = web.AppKey("admin_database", Database)
KEY = web.RequestKey("admin_key", ApiKey)
VERIFY_TIMEOUT_S = 10.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require(scope: str, handler: Handler) -> Handler:
    """Wrap `handler` so it runs only for a live key holding `scope`."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        key, response = await _answer(request, scope, handler)
        log.info(
            "admin.call", key=key.name if key else None, method=request.method,
            path=request.path, status=response.status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )  # fmt: skip
        return response

    return guarded


async def _answer(
    request: web.Request, scope: str, handler: Handler
) -> tuple[ApiKey | None, web.StreamResponse]:
    """Authorize, then call `handler`; a store or broker outage becomes a 503 answer."""
    if (waiting := failures.store_not_open(request)) is not None:
        return None, waiting  # the keys live in the store
    key: ApiKey | None = None
    try:
        key, refusal = await _authorize(request, scope)
        if refusal is not None:
            return key, refusal
        assert key is not None  # no refusal: a live key
        request[KEY] = key
        return key, await handler(request)
    except Exception as exc:  # a caller without a live key is not told the store's address
        return key, failures.answer(request, exc, request.app[DATABASE], detailed=key is not None)


async def _authorize(request: web.Request, scope: str) -> tuple[ApiKey | None, web.Response | None]:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None, problem(401, "Unauthorized", "send Authorization: Bearer <admin key>")
    async with asyncio.timeout(VERIFY_TIMEOUT_S):  # a store that hangs: 503, not a hung call
        key = await request.app[DATABASE].keys.verify(presented.strip())
    if key is None:
        return None, problem(401, "Unauthorized", "the admin key is unknown or revoked")
    if not key.allows(request.remote):
        return key, problem(403, "Forbidden", "this key may not be used from this address")
    if scope not in key.scopes:
        return key, problem(403, "Forbidden", f"this key lacks the scope {scope!r}")
    return key, None
