"""The LeanIX webhook subscription the configuration wants, over the Webhooks REST API.

    GET  /services/webhooks/v1/subscriptions?identifier=<id>   find ours by its identifier
    POST /services/webhooks/v1/subscriptions                   create
    PUT  /services/webhooks/v1/subscriptions/{id}              full update (same body)

One per workspace, through that workspace's client (its token, its URL). PUSH: to
`automation.callback_base_url` + /webhooks/leanix, with the first of the workspace's
Authorization values (`sources.leanix.authorization`, or its [[leanix.workspaces]] entry's)
as its authorizationHeader. PULL: no target; the plan tells which id the puller will use
(this subscription's, found by its identifier, unless an id is configured as an override).
The tag sets are the ones the rules listen to: ["pathfinder", <EVENT_TAG>] per LeanIX
event type whose CloudEvent type (`FACT_SHEET_UPDATED` -> leanix.factsheet.updated) a
rule's `on` matches.

Unconfirmed and tolerated (../shared/reference/leanix.md 2.2-2.3): the HTTP status codes
(any 2xx is taken); whether a read gives the authorizationHeader back (if it is missing or
null, it is "set, cannot be compared"); tagSets matching (AND within a set, OR across).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service import workspaces
from service.bus.topics import topic_matches
from service.clients.leanix import LeanixClient
from service.errors import ConfigError, VendorUnavailable
from service.settings import Settings
from service.subscriptions import Found, Wanted
from service.workspaces import Workspace

PATH = "/services/webhooks/v1/subscriptions"
WEBHOOK_PATH = "/webhooks/leanix"
SOURCE_TAG = "pathfinder"
# The event tags LeanIX documents (reference 2.4) that the receiver turns into events.
EVENT_TAGS = (
    "FACT_SHEET_CREATED",
    "FACT_SHEET_UPDATED",
    "FACT_SHEET_ARCHIVED",
    "FACT_SHEET_DELETED",
    "RELATION_CREATED",
    "RELATION_UPDATED",
    "RELATION_ARCHIVED",
    "RELATION_DELETED",
    "RELATION_SWITCH",
    "FACT_SHEET_TAG_ADDED",
    "FACT_SHEET_TAG_REMOVED",
    "FACT_SHEET_FIELD_UPDATED",
)
COMPARED: tuple[str, ...] = ("identifier", "deliveryType", "targetUrl", "targetMethod")
COMPARED += ("tagSets", "ignoreError", "payloadMode", "active")


def event_type(tag: str) -> str:
    """`FACT_SHEET_UPDATED` -> `leanix.factsheet.updated`, as the receiver names it."""
    words = tag.lower().split("_")
    if words[:2] == ["fact", "sheet"]:
        words = ["factsheet", *words[2:]]
    return f"leanix.{'_'.join(words[:-1])}.{words[-1]}"


def tag_sets(patterns: Sequence[str]) -> list[list[str]]:
    """The ["pathfinder", TAG] sets of the LeanIX events some pattern (a rule's `on`) takes."""
    return [
        [SOURCE_TAG, tag]
        for tag in EVENT_TAGS
        if any(topic_matches(pattern, event_type(tag)) for pattern in patterns)
    ]


class LeanixSubscriptions:
    """Our one LeanIX subscription of a workspace, through its LeanIX client (its token and
    its pace); `grouped`: printed under the workspace's name (several are configured)."""

    def __init__(
        self,
        client: LeanixClient,
        settings: Settings,
        patterns: Sequence[str],
        workspace: Workspace | None = None,
        grouped: bool = False,
    ) -> None:
        self.client = client
        self.settings = settings
        self.patterns = patterns  # the `on` patterns of every rule
        self.workspace = workspace or workspaces.configured(settings)[0]
        self.group = self.workspace.name if grouped else ""

    async def wanted(self) -> Sequence[Wanted]:
        wanted = self.settings.subscriptions
        tags = tag_sets(self.patterns)
        key = f'leanix subscription "{wanted.leanix_identifier}"'
        if not tags:
            skipped = "no rule's `on` matches a LeanIX event type"
            return [Wanted(key, {}, skipped=skipped, group=self.group)]
        fields: dict[str, Any] = {
            "identifier": wanted.leanix_identifier,
            "deliveryType": wanted.leanix_delivery,
            "tagSets": tags,
            "ignoreError": False,  # True would drop events whose delivery failed
            "payloadMode": "DEFAULT",
            "active": True,
        }
        if wanted.leanix_delivery == "PULL":
            return [Wanted(key, fields, group=self.group, notes=self._pulled)]
        fields |= {"targetUrl": self._target_url(), "targetMethod": "POST"}
        secrets = {"authorizationHeader": self._authorization()}
        return [Wanted(key, fields, secrets, group=self.group)]

    def _pulled(self, found: Found | None) -> list[str]:
        """Which subscription id the puller will pull."""
        override = self.workspace.pull_subscription_id
        if override:
            notes = [f"pulled: subscription id {override} (configured, overriding the lookup)"]
            if found is not None and found.id != override:
                notes.append(f"! not this one ({found.id}): remove the override to pull it")
            return notes
        if found is None:
            return ["pulled: the id LeanIX gives it, found by its identifier"]
        return [f"pulled: subscription id {found.id} (found by its identifier)"]

    async def find(self, wanted: Wanted) -> Found | None:
        identifier = str(wanted.fields["identifier"])
        answer = await self.client.rest("GET", PATH, identifier=identifier)
        for item in _data(answer, list):
            if isinstance(item, dict) and item.get("identifier") == identifier:
                return _found(item)
        return None

    async def create(self, wanted: Wanted) -> None:
        await self.client.rest("POST", PATH, _body(wanted))

    async def update(self, found: Found, wanted: Wanted) -> None:
        # A full replacement: the authorizationHeader is always sent with it.
        await self.client.rest("PUT", f"{PATH}/{found.id}", _body(wanted))

    def _target_url(self) -> str:
        base = self.settings.automation.callback_base_url.rstrip("/")
        if not base:
            raise ConfigError(
                "automation.callback_base_url",
                "a PUSH subscription needs the service's public URL; or set "
                "subscriptions.leanix_delivery = PULL",
            )
        return base + WEBHOOK_PATH

    def _authorization(self) -> str:
        values = self.workspace.authorization
        if not values:
            single = not self.settings.leanix.workspaces
            raise ConfigError(
                "sources.leanix.authorization"
                if single
                else f"leanix.workspaces ({self.workspace.name}).authorization",
                "a PUSH subscription sends it to the service: set $LEANIX_WEBHOOK_AUTHORIZATION "
                '(e.g. "Basic <base64 of user:password>")',
            )
        return values[0]  # the first is the current one; the others are being rotated out


def _body(wanted: Wanted) -> dict[str, Any]:
    return {**wanted.fields, **wanted.secrets}


def _found(item: Mapping[str, Any]) -> Found:
    header = item.get("authorizationHeader")
    secrets = {"authorizationHeader": header if isinstance(header, str) and header else None}
    return Found(str(item.get("id")), {name: item.get(name) for name in COMPARED}, secrets)


def _data(answer: Any, kind: type) -> Any:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, kind):
        raise VendorUnavailable("leanix", f"{PATH} answered without its data: try again later")
    return data
