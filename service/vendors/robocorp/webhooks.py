"""The Control Room webhooks the configuration wants (`python -m service subscriptions`).

    GET    /workspaces/{ws}/webhooks        find ours: same process, endpoint our callback path
    GET    /workspaces/{ws}/webhooks/{id}   its secret (the list leaves it out)
    POST   /workspaces/{ws}/webhooks        create
    DELETE /workspaces/{ws}/webhooks/{id}   (with POST) the only way to change one

One webhook per process a rule starts (the API's webhooks are process-scoped: `process.id`
is required, contracts/robocorp.json), to automation.callback_base_url + /callbacks/robocorp,
for every process_run.* event. Control Room generates the secret, so it cannot be applied:
when it is not among sources.robocorp.secrets, the plan says so and what to do (nothing
prints it). Creating or re-creating a webhook gives it a new secret.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from service.errors import VendorUnavailable
from service.subscriptions import Found, Subscriber, Wanted
from service.vendors.robocorp.client import RobocorpClient

CALLBACK_PATH = "/callbacks/robocorp"
EVENTS = ["process_run.started", "process_run.completed", "process_run.unresolved"]
HINT = (
    "Control Room generates webhook secrets: copy this webhook's secret (Control Room -> "
    "Integrations) into $ROBOCORP_WEBHOOK_SECRET"
)


class RobocorpWebhooks:
    """Our webhook per Robocorp process in the rules' targets."""

    def __init__(self, session: aiohttp.ClientSession, subscriber: Subscriber) -> None:
        self.client = RobocorpClient(session, subscriber.client)
        self.subscriber = subscriber
        self.targets = subscriber.targets  # the `start.target` of every Robocorp rule

    async def wanted(self) -> Sequence[Wanted]:
        base = self.subscriber.callback_base_url.rstrip("/")
        configured = self.subscriber.source.secrets
        wanted = []
        for target in _unique(self.targets):
            key = f"robocorp webhook for process {target['process_id']}"
            if not base:
                wanted.append(Wanted(key, {}, skipped="set automation.callback_base_url"))
                continue
            fields = {
                "endpoint": base + CALLBACK_PATH,
                "enabled_events": EVENTS,
                "process": {"id": target["process_id"]},
            }
            secret = configured[0] if configured else ""
            wanted.append(Wanted(key, fields, {"secret": secret}, False, HINT, target=target))
        return wanted

    async def find(self, wanted: Wanted) -> Found | None:
        doc = await self.client.workspace("GET", wanted.target, "/webhooks")
        hooks = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(hooks, list):
            raise VendorUnavailable("robocorp", "GET /webhooks answered without 'data'")
        for hook in hooks:
            if _ours(hook, wanted):
                full = await self.client.workspace("GET", wanted.target, f"/webhooks/{hook['id']}")
                return self._found(full)
        return None

    async def create(self, wanted: Wanted) -> None:
        await self.client.workspace("POST", wanted.target, "/webhooks", json=dict(wanted.fields))

    async def update(self, found: Found, wanted: Wanted) -> None:
        # No update in the API: replace it (and so it gets a new secret).
        await self.client.workspace("DELETE", wanted.target, f"/webhooks/{found.id}")
        await self.create(wanted)

    def _found(self, hook: Mapping[str, Any]) -> Found:
        fields = {name: hook.get(name) for name in ("endpoint", "enabled_events", "process")}
        secret = hook.get("secret")
        return Found(str(hook.get("id")), fields, {"secret": self._known(secret)})

    def _known(self, secret: Any) -> str | None:
        """The configured secret equal to the webhook's (any of them), else a mismatch."""
        if not isinstance(secret, str) or not secret:
            return None  # not given back: cannot be compared
        configured: tuple[str, ...] = self.subscriber.source.secrets
        for value in configured:
            if hmac.compare_digest(value.encode(), secret.encode()):
                return configured[0]
        return "\0differs"  # never equal to a configured secret; never shown


def _ours(hook: Any, wanted: Wanted) -> bool:
    if not isinstance(hook, dict) or not isinstance(hook.get("endpoint"), str):
        return False
    process = hook.get("process") or {}
    same_process = process.get("id") == wanted.fields["process"]["id"]
    return bool(same_process and hook["endpoint"].rstrip("/").endswith(CALLBACK_PATH))


def _unique(targets: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: dict[tuple[str, str], Mapping[str, Any]] = {}
    for target in targets:
        seen.setdefault((str(target.get("workspace_id", "")), str(target["process_id"])), target)
    return list(seen.values())
