"""The LeanIX webhook subscription the configuration wants, over the Webhooks REST API.

    GET  /services/webhooks/v1/subscriptions?identifier=<id>   find ours by its identifier
    POST /services/webhooks/v1/subscriptions                   create
    PUT  /services/webhooks/v1/subscriptions/{id}              full update (same body)

PUSH: to `automation.callback_base_url` + /webhooks/leanix, with the first value of
`sources.leanix.authorization` as its authorizationHeader. PULL: no target. The tag sets
are the ones the rules listen to: ["pathfinder", <EVENT_TAG>] per LeanIX event type whose
CloudEvent type (`FACT_SHEET_UPDATED` -> leanix.factsheet.updated) a rule's `on` matches.

Unconfirmed and tolerated (../shared/reference/leanix.md 2.2-2.3): the HTTP status codes
(any 2xx is taken); whether a read gives the authorizationHeader back (if it is missing or
null, it is "set, cannot be compared"); tagSets matching (AND within a set, OR across).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.bus.topics import topic_matches
from service.clients.leanix import LeanixClient
from service.errors import ConfigError, VendorUnavailable
from service.settings import Settings
from service.subscriptions import Found, Wanted

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
    """Our one LeanIX subscription, through the LeanIX client (its token and its pace)."""

    def __init__(self, client: LeanixClient, settings: Settings, patterns: Sequence[str]) -> None:
        self.client = client
        self.settings = settings
        self.patterns = patterns  # the `on` patterns of every rule

    async def wanted(self) -> Sequence[Wanted]:
        wanted = self.settings.subscriptions
        tags = tag_sets(self.patterns)
        key = f'leanix subscription "{wanted.leanix_identifier}"'
        if not tags:
            return [Wanted(key, {}, skipped="no rule's `on` matches a LeanIX event type")]
        fields: dict[str, Any] = {
            "identifier": wanted.leanix_identifier,
            "deliveryType": wanted.leanix_delivery,
            "tagSets": tags,
            "ignoreError": False,  # True would drop events whose delivery failed
            "payloadMode": "DEFAULT",
            "active": True,
        }
        if wanted.leanix_delivery == "PULL":
            return [Wanted(key, fields)]
        fields |= {"targetUrl": self._target_url(), "targetMethod": "POST"}
        return [Wanted(key, fields, {"authorizationHeader": self._authorization()})]

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
        values = self.settings.sources.leanix.authorization
        if not values:
            raise ConfigError(
                "sources.leanix.authorization",
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
