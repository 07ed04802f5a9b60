"""Start: the puller of the configured subscription, built from the settings."""

from __future__ import annotations

import aiohttp

from service.bus.broker import Broker
from service.clients.leanix import LeanixClient
from service.clients.leanix_webhooks import LeanixWebhooks
from service.errors import ConfigError
from service.pull.puller import Puller
from service.receiver import sources
from service.resources import leanix_pace
from service.settings import Settings
from service.store import Database


def require(settings: Settings) -> None:
    """ConfigError naming the key PULL lacks: checked before anything is opened."""
    if not settings.leanix_pull.enabled:
        raise ConfigError(
            "leanix_pull.subscription_id", "set it ($LEANIX_PULL_SUBSCRIPTION_ID) to pull"
        )
    if not settings.clients.leanix.api_token:
        raise ConfigError("clients.leanix.api_token", "PULL fetches with it: set $LEANIX_API_TOKEN")


def build(
    settings: Settings, session: aiohttp.ClientSession, broker: Broker, database: Database
) -> Puller:
    """The puller; ConfigError naming the key when PULL is not fully configured."""
    require(settings)
    pull, api = settings.leanix_pull, settings.clients.leanix
    leanix = LeanixClient(session, api, limiter=leanix_pace(api, database))
    webhooks = LeanixWebhooks(session, leanix, pull.timeout_s)
    (source,) = (s for s in sources.build(settings.sources) if s.name == "leanix")
    publish_timeout_s = settings.http.publish_timeout_s
    return Puller(pull, webhooks, broker, database.leases, source, publish_timeout_s)
