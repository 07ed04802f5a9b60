"""Mount the admin API and the console on an aiohttp app."""

from __future__ import annotations

from aiohttp import web

from service.admin import api, console, failures, routes
from service.admin.auth import DATABASE
from service.bus.broker import Broker
from service.settings import Settings
from service.store import Database


def mount(app: web.Application, settings: Settings, broker: Broker, database: Database) -> None:
    """Add /api/v1 (and /console) to `app`."""
    app[DATABASE] = database
    app[api.SETTINGS] = settings
    app[api.BROKER] = broker
    app[failures.RETRY_AFTER_S] = settings.http.retry_after_s
    routes.add_routes(app)
    console.add_routes(app)
