"""The Orchestrator webhook the configuration wants (`python -m service subscriptions`).

    GET  /odata/Webhooks            find ours by its Name (subscriptions.webhook_name)
    POST /odata/Webhooks            create
    PUT  /odata/Webhooks({Id})      update (the whole WebhookDto)

Url = automation.callback_base_url + /callbacks/uipath, Secret = the first of
sources.uipath.secrets, Events = the job.* events the loop reads. Webhooks are tenant-level:
no folder header. The external application needs the OR.Webhooks scope (added to the
configured ones for these calls only).

Tolerated: whether a read gives the Secret back is not published (WebhookDto has a nullable
Secret); when it does not, the secret is "set, cannot be compared". Whether
job.suspended/job.resumed exist is unconfirmed (vendors.md §3): they are not asked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import aiohttp

from service.errors import VendorUnavailable
from service.subscriptions import Found, Subscriber, Wanted
from service.vendors.uipath.client import UipathClient

PATH = "/odata/Webhooks"
CALLBACK_PATH = "/callbacks/uipath"
EVENTS = ("job.created", "job.started", "job.completed", "job.faulted", "job.stopped")
COMPARED = ("Name", "Url", "Enabled", "SubscribeToAllEvents", "AllowInsecureSsl", "Events")


class UipathWebhooks:
    """Our one tenant webhook in Orchestrator."""

    def __init__(self, session: aiohttp.ClientSession, subscriber: Subscriber) -> None:
        api = subscriber.client
        scopes = " ".join(dict.fromkeys([*api.scopes.split(), "OR.Webhooks"]))
        self.client = UipathClient(session, dataclasses.replace(api, scopes=scopes))
        self.subscriber = subscriber

    async def wanted(self) -> Sequence[Wanted]:
        name = self.subscriber.webhook_name
        key = f'uipath webhook "{name}"'
        base = self.subscriber.callback_base_url.rstrip("/")
        secrets = self.subscriber.source.secrets
        if not base or not secrets:
            why = "set automation.callback_base_url and $UIPATH_WEBHOOK_SECRET to manage it"
            return [Wanted(key, {}, skipped=why)]
        fields = {
            "Name": name,
            "Url": base + CALLBACK_PATH,
            "Enabled": True,
            "SubscribeToAllEvents": False,
            "AllowInsecureSsl": False,
            "Events": [{"EventType": event} for event in EVENTS],
        }
        return [Wanted(key, fields, {"Secret": secrets[0]})]

    async def find(self, wanted: Wanted) -> Found | None:
        doc = (await self.client.tenant("GET", PATH)).json()
        hooks = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(hooks, list):
            raise VendorUnavailable("uipath", f"GET {PATH} answered without 'value'")
        for hook in hooks:
            if isinstance(hook, dict) and hook.get("Name") == wanted.fields["Name"]:
                return _found(hook)
        return None

    async def create(self, wanted: Wanted) -> None:
        await self.client.tenant("POST", PATH, json=_body(wanted), ok=(200, 201))

    async def update(self, found: Found, wanted: Wanted) -> None:
        body = {**_body(wanted), "Id": int(found.id)}
        await self.client.tenant("PUT", f"{PATH}({found.id})", json=body, ok=(200, 204))


def _body(wanted: Wanted) -> dict[str, Any]:
    return {**wanted.fields, **wanted.secrets}


def _found(hook: dict[str, Any]) -> Found:
    secret = hook.get("Secret")
    fields = {name: hook.get(name) for name in COMPARED}
    fields["Events"] = [{"EventType": e.get("EventType")} for e in hook.get("Events") or []]
    return Found(str(hook.get("Id")), fields, {"Secret": secret if secret else None})
