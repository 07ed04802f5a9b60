"""Probes and metrics over HTTP, for the receiver and the worker alike.

GET /healthz   liveness: 200 while the process runs
GET /readyz    readiness: 200 when connected to RabbitMQ with the topology declared and
               nothing else start-up awaits (the worker's store); 503 naming what is not
GET /metrics   Prometheus exposition (queue depth and runs in flight read on scrape)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from service import metrics
from service.bus.broker import Broker
from service.problems import problem
from service.startup import STARTUP, Startup

# Extra work done before each scrape (refreshing gauges); set by the worker.
Refresh = Callable[[], Awaitable[None]]
BROKER = web.AppKey("probe_broker", Broker)
REFRESH = web.AppKey("probe_refresh", list)  # list[Refresh]
SCRAPE_TIMEOUT_S = 2.0


def add_probes(app: web.Application, broker: Broker) -> None:
    """Add /healthz, /readyz and /metrics to `app`."""
    app[BROKER] = broker
    app[STARTUP] = Startup()
    app[REFRESH] = [broker_depths(broker)]
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Connected to the broker with the topology declared, nothing else awaited; 503 otherwise."""
    unready = request.app[STARTUP].unready()
    if not request.app[BROKER].ready:
        unready.insert(0, "not connected to the message broker")
    if not unready:
        return web.json_response({"status": "ready"})
    return problem(503, "Not ready", "; ".join(unready))


async def scrape(request: web.Request) -> web.Response:
    """Refresh the gauges read on scrape (bounded), then expose every metric."""
    for refresh in request.app[REFRESH]:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SCRAPE_TIMEOUT_S):
                await refresh()
    body, content_type = metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


def broker_depths(broker: Broker) -> Refresh:
    """Read the depth of the work and dead-letter queues."""

    async def refresh() -> None:
        if not broker.ready or broker.connection is None:
            return
        amqp = broker.settings
        channel = await broker.connection.channel()
        try:
            for name in (amqp.queue, amqp.dead_letter_queue):
                declared = await channel.declare_queue(name, passive=True)
                metrics.queue_depth.labels(name).set(declared.declaration_result.message_count or 0)
        finally:
            await channel.close()

    return refresh


def worker_app(broker: Broker, refresh: list[Refresh]) -> web.Application:
    """The worker's small HTTP app: probes and metrics only."""
    app = web.Application()
    add_probes(app, broker)
    app[REFRESH].extend(refresh)
    return app
