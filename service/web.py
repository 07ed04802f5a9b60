"""Web: the one place the HTTP application is assembled.

    receiver/app.py   the webhook routes, problem+json errors and the access log
    probes.py         /healthz, /readyz, /metrics
    admin/            the openapi document, and with a store the admin API and console

The parts are siblings that never import each other: each adds its routes to the app
built here, and this module alone knows them all. It opens nothing but the broker when
none is given (tests, benchmarks); runtime.py opens the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from service.admin import openapi
from service.admin.mount import mount as mount_admin
from service.bus.broker import Broker
from service.probes import add_probes
from service.receiver import app as receiver
from service.settings import Settings
from service.store import Database

BROKER = web.AppKey("broker", Broker)


def create_app(
    settings: Settings, broker: Broker | None = None, database: Database | None = None
) -> web.Application:
    """The HTTP application; it opens (and closes) its own broker unless one is given.

    With a database, the admin API (/api/v1) and the console (/console) are served too.
    """
    app = web.Application(
        client_max_size=settings.http.max_body_bytes,
        middlewares=[receiver.outcome],
    )
    app[BROKER] = broker or Broker(settings.amqp)
    if broker is None:
        app.cleanup_ctx.append(_own_broker)
    receiver.add_routes(app, settings, app[BROKER])
    add_probes(app, app[BROKER])
    openapi.add_routes(app)
    if database is not None:
        mount_admin(app, settings, app[BROKER], database)
    return app


async def _own_broker(app: web.Application) -> AsyncIterator[None]:
    await app[BROKER].start()
    yield
    await app[BROKER].close()
