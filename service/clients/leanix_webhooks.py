"""LeanIX Webhooks API, PULL side: find the subscription, fetch its next batch, commit its cursor.

    find    GET /services/webhooks/v1/subscriptions?identifier=<identifier>: the id of the
            PULL subscription `subscriptions apply` made under that identifier
    events  GET /services/webhooks/v1/subscriptions/{id}/events?autoCommit=false&timeout=N
            long-polls up to N seconds; answers {data: {events: [{cursor, event}],
            nextCursor}}, each `event` a JSON document serialised as a string
    cursor  PUT /services/webhooks/v1/subscriptions/{id}/cursor {"offset": n}: the next
            fetch starts at n; what lies before it cannot be fetched again

Bearer tokens come from the LeanIX client (one token exchange, one rate limit for the
technical user); a 401 renews the token once. A 5xx, a timeout or a 429 is
VendorUnavailable (retry later); another 4xx VendorRejected. HTTP statuses of this API are
not documented (../shared/contracts/leanix.json `unverified`): any 2xx counts as success,
and an envelope without `data` (or `data` without `events`) is read as an empty batch.
It must never put a token in a log line, an error or a repr.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from service.clients.base import HttpApi, Response
from service.clients.leanix import LeanixClient
from service.errors import VendorRejected, VendorUnavailable

SUBSCRIPTIONS_PATH = "/services/webhooks/v1/subscriptions"
SUCCESS = tuple(range(200, 300))
HTTP_MARGIN_S = 10.0  # a long poll may take its whole timeout: the HTTP call waits longer


@dataclass(frozen=True)
class Pulled:
    """One event of a batch: LeanIX's cursor offset and the serialised event, as bytes."""

    offset: int | None
    body: bytes


@dataclass(frozen=True)
class Batch:
    events: tuple[Pulled, ...]
    next_offset: int | None  # None: nothing to commit (an empty batch)


class LeanixWebhooks(HttpApi):
    """The PULL endpoints of one subscription."""

    vendor = "leanix"

    def __init__(
        self, session: aiohttp.ClientSession, leanix: LeanixClient, long_poll_s: int
    ) -> None:
        super().__init__(session, long_poll_s + HTTP_MARGIN_S)
        self.leanix = leanix
        self.long_poll_s = long_poll_s
        self._base = leanix.settings.base_url.rstrip("/") + SUBSCRIPTIONS_PATH

    def __repr__(self) -> str:
        return f"LeanixWebhooks(base_url={self.leanix.settings.base_url!r})"

    async def find(self, identifier: str) -> str:
        """The id of the PULL subscription named `identifier`; VendorRejected if there is
        none (or it is a PUSH subscription)."""
        response = await self._authorised("GET", self._base, params={"identifier": identifier})
        return pull_subscription_id(response.json(), identifier)

    async def fetch(self, subscription_id: str) -> Batch:
        """The next batch (empty when the long poll ended without events)."""
        url = f"{self._base}/{quote(subscription_id, safe='')}/events"
        params = {"autoCommit": "false", "timeout": str(self.long_poll_s)}
        response = await self._authorised("GET", url, params=params)
        return batch_of(response.json())

    async def commit(self, subscription_id: str, offset: int) -> None:
        """Move the cursor: the next fetch starts at `offset`."""
        url = f"{self._base}/{quote(subscription_id, safe='')}/cursor"
        body = orjson.dumps({"offset": offset})
        await self._authorised("PUT", url, data=body, content_type="application/json")

    async def _authorised(
        self, method: str, url: str, content_type: str | None = None, **kwargs: Any
    ) -> Response:
        """One call with the Bearer token, at the technical user's pace; renewed once on 401."""
        for _ in range(2):
            token = await self.leanix.access_token()
            headers = {"Authorization": f"Bearer {token}"}
            if content_type:
                headers["Content-Type"] = content_type
            await self.leanix.limiter.acquire()
            response = await self.call(method, url, ok=(*SUCCESS, 401), headers=headers, **kwargs)
            if response.status != 401:
                return response
            self.leanix.forget_token(token)
        raise VendorRejected(self.vendor, f"{method} {url} refused a fresh token (401)", 401)


def pull_subscription_id(answer: Any, identifier: str) -> str:
    """The id of the subscription named `identifier` in a list answer, if it is a PULL one."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise VendorUnavailable("leanix", "the subscriptions answer has no data list")
    named = [s for s in data if isinstance(s, dict) and s.get("identifier") == identifier]
    pulled = [s for s in named if s.get("deliveryType") == "PULL" and s.get("id")]
    if pulled:
        return str(pulled[0]["id"])
    what = "is a PUSH subscription" if named else "does not exist"
    raise VendorRejected(
        "leanix",
        f'the subscription "{identifier[:100]}" {what}: set subscriptions.leanix_delivery = '
        "PULL and run `python -m service subscriptions apply`",
        404,
    )


def batch_of(answer: Any) -> Batch:
    """A PullResultResponse as a Batch; VendorUnavailable if it is no such document."""
    if answer is None:
        return Batch((), None)
    if not isinstance(answer, dict):
        raise VendorUnavailable("leanix", "the events answer is not a JSON object")
    data = answer.get("data")
    data = data if isinstance(data, dict) else {}
    events = data.get("events")
    pulled = (
        tuple(_pulled(i) for i in events if isinstance(i, dict)) if isinstance(events, list) else ()
    )
    if not pulled:
        return Batch((), None)
    return Batch(pulled, _next_offset(data, pulled))


def _next_offset(data: dict[str, Any], pulled: tuple[Pulled, ...]) -> int | None:
    """nextCursor's offset; without one, after the last event's own (a guess: the API
    documents nextCursor as the place to commit)."""
    offset = _offset(data.get("nextCursor"))
    if offset is None and pulled[-1].offset is not None:
        offset = pulled[-1].offset + 1
    return offset


def _pulled(item: dict[str, Any]) -> Pulled:
    event = item.get("event")
    # The contract has `event` as a string; a JSON object is tolerated in case it is not.
    body = event.encode() if isinstance(event, str) else orjson.dumps(event)
    return Pulled(_offset(item.get("cursor")), body)


def _offset(cursor: Any) -> int | None:
    offset = cursor.get("offset") if isinstance(cursor, dict) else None
    return offset if isinstance(offset, int) and not isinstance(offset, bool) else None
