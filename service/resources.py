"""Resources: what the worker opens once per process and closes in one place.

One aiohttp session for every vendor client, the store, the broker, and the rules. A
platform's client (service/vendors/) exists only when its credentials are configured.
Handlers see only the part of it they may use (`services()`: the clients, never the
settings or the broker); the built-in automation gets the whole of it as the argument of
its registry's factory (service/automation/handlers.py `build`), never through the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from sqlalchemy.engine import make_url

from service import workspaces
from service.bus.broker import Broker
from service.clients.leanix import LeanixClient, rate_limit_key
from service.clients.leanix_metrics import MetricsOutbox
from service.clients.ratelimit import Pacer, RateLimiter, SharedRateLimiter
from service.errors import VendorRejected, VendorUnavailable
from service.runs import RunClient
from service.settings import ClientsSettings, LeanixApi, Settings
from service.store import Database
from service.vendors import registry
from service.worker.context import Services
from service.workspaces import Workspace

log = structlog.get_logger("service.resources")


@dataclass(frozen=True)
class Resources:
    settings: Settings
    broker: Broker
    database: Database
    session: aiohttp.ClientSession
    leanix: LeanixClient | None = None
    runners: dict[str, RunClient] = field(default_factory=dict)
    rules: tuple[Any, ...] = ()  # automation.rules.Rule
    run_metrics: MetricsOutbox | None = None  # when clients.leanix.metrics.enabled
    leanix_clients: Mapping[str, LeanixClient] = field(default_factory=dict)  # by workspace

    def workspace(self, workspace_id: str | None) -> Workspace | None:
        """The configured workspace an event's (or a run's) workspace id belongs to."""
        return workspaces.find(workspaces.configured(self.settings), workspace_id)

    def leanix_for(self, workspace_id: str | None) -> LeanixClient | None:
        """The LeanIX client of that workspace; None if it has none."""
        if not self.leanix_clients:
            return self.leanix
        found = self.workspace(workspace_id)
        return self.leanix_clients.get(found.name) if found is not None else None

    def services(self) -> Services:
        """What handlers may use: the clients, and an empty state for their lifespans."""
        return Services(run_clients=self.runners, leanix_client=self.leanix)


def run_clients(session: aiohttp.ClientSession, clients: ClientsSettings) -> dict[str, RunClient]:
    """The platform clients whose credentials are configured (service/vendors/registry.py)."""
    runners: dict[str, RunClient] = {}
    for platform in registry.PLATFORMS:
        client = platform.running.client(session, platform.client_settings(clients))
        if client is not None:
            runners[platform.name] = client
    return runners


def database_of(settings: Settings, stack: AsyncExitStack) -> Database:
    """The store, not yet opened (nothing connects yet); its closing registered on `stack`."""
    _make_sqlite_folder(settings.store.url)
    database = Database(settings.store.url)
    stack.push_async_callback(database.close)
    return database


async def open_database(settings: Settings, stack: AsyncExitStack) -> Database:
    """Open (and migrate) the store; register its closing on `stack`."""
    database = database_of(settings, stack)
    await database.open()
    return database


async def open_resources(
    settings: Settings,
    broker: Broker,
    database: Database,
    stack: AsyncExitStack,
    rules: Sequence[Any] = (),
) -> Resources:
    """Open the HTTP session over the opened store; register their closing on `stack`."""
    session = aiohttp.ClientSession(raise_for_status=False)
    stack.push_async_callback(session.close)
    api = settings.clients.leanix
    clients = leanix_clients(session, settings, database)
    for name, client in clients.items():
        await _learn_technical_user(client, name)
    leanix = next(iter(clients.values()), None)  # handlers' context.leanix: the first one
    runners = run_clients(session, settings.clients)
    outbox = await _open_outbox(api, stack) if clients else None
    return Resources(
        settings, broker, database, session, leanix, runners, tuple(rules), outbox, clients
    )


def leanix_clients(
    session: aiohttp.ClientSession, settings: Settings, database: Database
) -> dict[str, LeanixClient]:
    """A LeanIX client per workspace with an API token, by workspace name; each paced as
    its own technical user."""
    return {
        ws.name: LeanixClient(session, ws.api, limiter=leanix_pace(ws.api, database))
        for ws in workspaces.configured(settings)
        if ws.api.api_token
    }


async def _open_outbox(api: LeanixApi, stack: AsyncExitStack) -> MetricsOutbox | None:
    """The run metrics outbox, flushing in the background until the stack closes (after
    the consumer drained: the last runs' points are flushed too)."""
    if not api.metrics.enabled:
        return None
    outbox = MetricsOutbox(api.metrics)
    halt = asyncio.Event()
    task = asyncio.create_task(outbox.run(halt))

    async def stop() -> None:
        halt.set()
        try:  # a post under way may hang up to timeout_s: shutdown does not wait for it
            async with asyncio.timeout(2 * api.metrics.flush_interval_s + 1.0):
                await task
        except TimeoutError:
            outbox.abandon()

    stack.push_async_callback(stop)
    return outbox


def leanix_pace(api: LeanixApi, database: Database) -> Pacer:
    """LeanIX's pace: one bucket in the store for every worker of this user, or this
    process's own."""
    if not api.rate_limit_shared:
        return RateLimiter(api.rate_limit_rps)
    return SharedRateLimiter(database.rate_limits, rate_limit_key(api), api.rate_limit_rps)


async def _learn_technical_user(leanix: LeanixClient, workspace: str) -> None:
    # The loop guard needs our technical user's id; LeanIX may be down at start-up, in
    # which case the id is learnt with the first token the client fetches.
    try:
        await leanix.authenticate()
    except VendorUnavailable as exc:
        log.warning("leanix.unreachable_at_start", workspace=workspace, error=str(exc))
    except VendorRejected as exc:
        log.error("leanix.token_rejected", workspace=workspace, error=str(exc))


def _make_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
