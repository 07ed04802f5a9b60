"""The LeanIX simulator's webhooks: subscriptions, the body per payload mode, and the POST.

The shape of the X-Webhooks-Event header is a guess. A DEFAULT body's `id` is a number, a
WRAPPED_EVENT envelope's `id` a string and its `sequenceInfo` an integer, as in LeanIX's
webhooks API model (../shared/contracts/leanix.json). Each body is POSTed once, never
retried; the simulator records what became of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson


@dataclass(frozen=True)
class Subscription:
    target_url: str
    authorization: str = field(repr=False)
    payload_mode: str = "DEFAULT"
    # WRAPPED_EVENT: whether the envelope carries a userId (it is optional; payload's is not)
    envelope_user_id: bool = True


def event_tag(event_type: str) -> str:
    """`FactSheetUpdatedEvent` -> `FACT_SHEET_UPDATED`."""
    name = event_type.removesuffix("Event")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def delivery(event: dict[str, Any], payload_mode: str) -> dict[str, Any]:
    """The body for a payload mode: the event, the wrapped event, or nothing."""
    if payload_mode == "NO_PAYLOAD":
        return {}
    if payload_mode != "WRAPPED_EVENT":
        return event
    tag = event_tag(str(event["type"]))
    return {
        "id": str(event["id"]),
        "createdAt": event["createdAt"],
        "type": tag,
        "sourceName": "EAM",
        "sourceId": "pathfinder",
        "workspaceId": event["workspaceId"],
        "userId": event["userId"],
        "tags": ["pathfinder", tag],
        "payload": event,
        # [U] What the number counts is not published; the transaction's is the likeliest.
        "sequenceInfo": event["transactionSequenceNumber"],
    }


async def post(target_url: str, authorization: str, body: dict[str, Any], workspace_id: str) -> int:
    """POST one body as LeanIX's webhook sender would; return the receiver's HTTP status."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Webhooks",
        "X-Webhooks-Event": f"{workspace_id}.leanix.net",  # shape unconfirmed
    }
    if authorization:
        headers["Authorization"] = authorization
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(target_url, data=orjson.dumps(body), headers=headers) as response,
    ):
        await response.read()
    return response.status
