"""`python -m service subscriptions plan|apply`: the platforms' webhook subscriptions.

Builds one WebhookApi per LeanIX workspace with an API token (each through its own client:
its token never goes to another workspace's URL; with several workspaces the output is
grouped under each one's name) and per platform that has one and is configured (when its
run client is, through the registry), hands them to service.subscriptions, prints the
outcome. Never prints a secret.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import aiohttp

from service import workspaces
from service.automation.rules import Rule
from service.automation.rules import load as load_rules
from service.clients.leanix import LeanixClient
from service.clients.leanix_subscriptions import LeanixSubscriptions
from service.errors import VendorRejected, VendorUnavailable
from service.settings import Settings
from service.subscriptions import Subscriber, WebhookApi, apply, plan, render
from service.vendors import registry


def apis(
    session: aiohttp.ClientSession, settings: Settings, rules: Sequence[Rule]
) -> list[WebhookApi]:
    """The subscription API of LeanIX and of every configured platform that has one."""
    found: list[WebhookApi] = []
    grouped = bool(settings.leanix.workspaces)
    for workspace in workspaces.configured(settings):
        if workspace.api.api_token:
            client = LeanixClient(session, workspace.api)
            patterns = _patterns(rules, workspace)
            found.append(LeanixSubscriptions(client, settings, patterns, workspace, grouped))
    for platform in registry.PLATFORMS:
        client_settings = platform.client_settings(settings.clients)
        if platform.webhooks is None or platform.running.client(session, client_settings) is None:
            continue
        subscriber = Subscriber(
            client_settings,
            platform.source_settings(settings.sources),
            settings.automation.callback_base_url,
            settings.subscriptions.webhook_name,
            [rule.target for rule in rules if rule.vendor == platform.name],
        )
        found.append(platform.webhooks(session, subscriber))
    return found


def _patterns(rules: Sequence[Rule], workspace: workspaces.Workspace) -> list[str]:
    """The `on` patterns of the rules that may act on this workspace's events."""
    names = workspace.names()
    return [
        pattern
        for rule in rules
        if not rule.when.workspaces or names & set(rule.when.workspaces)
        for pattern in rule.patterns
    ]


async def run_command(settings: Settings, action: str, rewrite_secrets: bool = False) -> int:
    """Plan or apply; print the difference. 0 on success, 1 when a platform failed."""
    rules = load_rules(settings.rules)
    async with aiohttp.ClientSession() as session:
        chosen = apis(session, settings, rules)
        if not chosen:
            print("nothing to manage: configure clients.leanix or a platform's client")
            return 0
        try:
            changes = await (apply if action == "apply" else plan)(chosen, rewrite_secrets)
        except (VendorUnavailable, VendorRejected) as exc:
            print(f"stopped: {exc}", file=sys.stderr)
            return 1
    sys.stdout.write(render(changes, applied=action == "apply"))
    return 0
