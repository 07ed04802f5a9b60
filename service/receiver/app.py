"""The receiver's aiohttp application: routes, health, error answers and the access log."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from service import metrics
from service.admin import openapi
from service.admin.mount import mount as mount_admin
from service.bus.broker import Broker
from service.errors import BrokerUnavailable, ClientAborted, InputError, Overloaded
from service.probes import add_probes
from service.receiver import sources
from service.receiver.body import Budget, defer_continue
from service.receiver.ingest import DETAIL, EVENT_ID, SOURCE, Handler, endpoint
from service.receiver.problems import problem
from service.settings import Settings
from service.store import Database

log = structlog.get_logger("service.receiver")

SETTINGS = web.AppKey("settings", Settings)
QUIET = frozenset({"/healthz", "/readyz", "/metrics"})
BROKER = web.AppKey("broker", Broker)
BUDGET = web.AppKey("budget", Budget)  # body bytes in flight: one budget per process


def create_app(
    settings: Settings, broker: Broker | None = None, database: Database | None = None
) -> web.Application:
    """The receiver app; it opens (and closes) its own broker unless one is given.

    With a database, the admin API (/api/v1) and the console (/console) are served too.
    """
    app = web.Application(
        client_max_size=settings.http.max_body_bytes,
        middlewares=[outcome],
    )
    app[SETTINGS] = settings
    app[BROKER] = broker or Broker(settings.amqp)
    if broker is None:
        app.cleanup_ctx.append(_own_broker)
    app[BUDGET] = Budget(settings.http.max_inflight_body_bytes)
    for source in sources.build(settings.sources):
        handler = endpoint(source, app[BROKER], settings.http, app[BUDGET])
        app.router.add_post(source.path, handler, expect_handler=defer_continue)
    add_probes(app, app[BROKER])
    openapi.add_routes(app)
    if database is not None:
        mount_admin(app, settings, app[BROKER], database)
    return app


async def _own_broker(app: web.Application) -> AsyncIterator[None]:
    await app[BROKER].start()
    yield
    await app[BROKER].close()


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
