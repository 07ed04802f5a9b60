"""Start: one puller per workspace, built from the settings.

PULL is on when `subscriptions.leanix_delivery = "PULL"` (the subscription `subscriptions
apply` makes, found by its identifier) or a subscription id is configured (an override:
`leanix_pull.subscription_id`, or a workspace's `pull_subscription_id`). Each workspace's
puller uses that workspace's own token and URL, under its own lease.
"""

from __future__ import annotations

import aiohttp

from service import workspaces
from service.bus.broker import Broker
from service.clients.leanix import LeanixClient
from service.clients.leanix_webhooks import LeanixWebhooks
from service.errors import ConfigError
from service.pull.puller import Puller, Subscription
from service.receiver import sources
from service.resources import leanix_pace
from service.settings import Settings
from service.store import Database


def wanted(settings: Settings) -> bool:
    """Whether the configuration asks for PULL."""
    overridden = any(w.pull_subscription_id for w in workspaces.configured(settings))
    return settings.subscriptions.leanix_delivery == "PULL" or overridden


def subscriptions(settings: Settings) -> list[tuple[workspaces.Workspace, Subscription]]:
    """Each workspace with an API token, and the subscription it pulls."""
    identifier = settings.subscriptions.leanix_identifier
    return [
        (ws, Subscription(ws.name, ws.pull_subscription_id, identifier, ws.source))
        for ws in workspaces.configured(settings)
        if ws.api.api_token
    ]


def require(settings: Settings) -> None:
    """ConfigError naming the key PULL lacks: checked before anything is opened."""
    if not wanted(settings):
        raise ConfigError(
            "subscriptions.leanix_delivery",
            'set it to "PULL" ($LEANIX_DELIVERY) and run `subscriptions apply`, or name the '
            "subscription in leanix_pull.subscription_id ($LEANIX_PULL_SUBSCRIPTION_ID) to pull",
        )
    if not subscriptions(settings):
        key = "leanix.workspaces" if settings.leanix.workspaces else "clients.leanix.api_token"
        raise ConfigError(key, "PULL fetches with an API token: set $LEANIX_API_TOKEN")


def build(
    settings: Settings, session: aiohttp.ClientSession, broker: Broker, database: Database
) -> list[Puller]:
    """The pullers, one per workspace; ConfigError naming the key when PULL is not fully
    configured."""
    require(settings)
    (source,) = (s for s in sources.build(settings.sources) if s.name == "leanix")
    pullers = []
    for ws, subscription in subscriptions(settings):
        leanix = LeanixClient(session, ws.api, limiter=leanix_pace(ws.api, database))
        webhooks = LeanixWebhooks(session, leanix, settings.leanix_pull.timeout_s)
        pullers.append(
            Puller(
                settings.leanix_pull,
                webhooks,
                broker,
                database.leases,
                source,
                settings.http.publish_timeout_s,
                subscription,
            )
        )
    return pullers
