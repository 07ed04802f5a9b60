"""The receiver's part of the HTTP application: webhook routes, error answers, access log.

service/web.py assembles the application: it adds these routes and installs `outcome`,
the middleware every route (the admin API's too) answers errors and logs through.
"""

from __future__ import annotations

import time

import structlog
from aiohttp import web

from service import metrics, workspaces
from service.bus.broker import Broker
from service.errors import BrokerUnavailable, ClientAborted, InputError, Overloaded
from service.problems import problem
from service.receiver import sources
from service.receiver.body import Budget, defer_continue
from service.receiver.ingest import DETAIL, EVENT_ID, SOURCE, Handler, endpoint
from service.settings import Settings

log = structlog.get_logger("service.receiver")

SETTINGS = web.AppKey("settings", Settings)
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
BUDGET = web.AppKey("budget", Budget)  # body bytes in flight: one budget per process


def add_routes(app: web.Application, settings: Settings, broker: Broker) -> None:
    """Add a POST route per configured source, publishing through `broker`."""
    app[SETTINGS] = settings
    app[BUDGET] = Budget(settings.http.max_inflight_body_bytes)
    for source in sources.build(settings.sources, workspaces.configured(settings)):
        handler = endpoint(source, broker, settings.http, app[BUDGET])
        app.router.add_post(source.path, handler, expect_handler=defer_continue)


@web.middleware
async def outcome(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer errors as problem+json, then log the outcome (one middleware: it is per request)."""
    started = time.perf_counter()
    response = await answer(request, handler)
    if not request.content.is_eof():  # answered before the body all came: it is not read
        response.force_close()  # and nothing can follow it on this connection
    if request.path not in QUIET:
        _log(request, response.status, started)
    return response


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn the service's errors, and aiohttp's own 404/405, into problem+json answers."""
    try:
        return await handler(request)
    except ClientAborted as exc:
        return aborted(request, exc)
    except InputError as exc:
        request[DETAIL] = exc.detail
        return problem(exc.status, exc.title, exc.detail)
    except (BrokerUnavailable, Overloaded) as exc:
        return retry_later(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason, f"{request.method} {request.path}: {exc.reason}")
    except Exception:
        log.exception("request.crashed", path=request.path)
        request[DETAIL] = "internal error"
        return problem(500, "Internal error", "the event was not accepted; retry later")


def retry_later(request: web.Request, exc: BrokerUnavailable | Overloaded) -> web.Response:
    """503 + Retry-After: the broker did not confirm, or the receiver holds enough bodies."""
    request[DETAIL] = str(exc)
    title = "Broker unavailable" if isinstance(exc, BrokerUnavailable) else "Busy"
    retry_after = str(request.app[SETTINGS].http.retry_after_s)
    detail = f"{exc}; the event was not accepted, retry later"
    return problem(503, title, detail, {"Retry-After": retry_after})


def aborted(request: web.Request, exc: ClientAborted) -> web.Response:
    """The client hung up: log it at info, no traceback; the answer goes nowhere."""
    request[DETAIL] = exc.detail
    log.info("request.aborted", path=request.path, detail=exc.detail)
    return web.Response(status=exc.status)


def _source_label(request: web.Request) -> str:
    if SOURCE in request:
        return request[SOURCE]
    return "admin" if request.path.startswith(("/api/", "/console")) else "other"


def _log(request: web.Request, status: int, started: float) -> None:
    """One log line per request outcome, with its duration and event id."""
    fields = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    for name, key in (("source", SOURCE), ("event_id", EVENT_ID), ("detail", DETAIL)):
        if key in request:
            fields[name] = request[key]
    log.info("request", **fields)
    metrics.requests.labels(_source_label(request), str(status)).inc()
