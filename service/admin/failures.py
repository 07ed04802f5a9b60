"""Admin answers to failures: what is down, and when to come back.

    the store not opened yet (start-up waits for it)  -> 503 + Retry-After, why it waits
    a store outage (refused, timed out, restarting)   -> 503 + Retry-After naming the store
    the broker unreachable (Unavailable)              -> 503 + Retry-After
    anything unexpected                               -> 500, logged as `admin.crashed`

Other refusals (InputError) and aiohttp's HTTP errors go on to the app's middleware. An
answer never carries the store's password.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from service.errors import InputError, Unavailable
from service.problems import problem
from service.startup import STARTUP, STORE
from service.store import Database, outages

log = structlog.get_logger("service.admin")

RETRY_AFTER_S = web.AppKey("admin_retry_after_s", int)


def store_not_open(request: web.Request) -> web.Response | None:
    """503 while start-up still waits for the store, else None."""
    startup = request.app.get(STARTUP)
    if startup is None or STORE not in startup.awaited:
        return None
    detail = f"{startup.awaited[STORE]} (start-up is waiting for it); retry later"
    return _unavailable(request, "Store unavailable", detail)


def answer(
    request: web.Request, exc: Exception, database: Database, *, detailed: bool
) -> web.Response:
    """The answer to `exc` raised by an admin call; raises it again if it is not ours.

    `detailed`: say what the store answered (it may name its host); else only that it is down.
    """
    if isinstance(exc, Unavailable):
        return _unavailable(request, exc.title, exc.detail)
    if isinstance(exc, InputError | web.HTTPException):
        raise exc
    url = database.engine.url
    reason = outages.describe(exc, url)
    if outages.is_outage(exc):
        log.warning("admin.store_unavailable", path=request.path, error=reason)
        detail = f"{outages.name(url)} is unavailable" + (f": {reason}" if detailed else "")
        return _unavailable(request, "Store unavailable", f"{detail}; retry later")
    log.error("admin.crashed", path=request.path, error=reason, exc_info=exc)
    return problem(500, "Internal error", "the admin API failed (see the log: admin.crashed)")


def _unavailable(request: web.Request, title: str, detail: str) -> web.Response:
    retry_after = str(request.app.get(RETRY_AFTER_S, 5))
    return problem(503, title, detail, {"Retry-After": retry_after})
