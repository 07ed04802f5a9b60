"""Loop guards: LeanIX events the automation must not act on.

- Events caused by our own technical user (of the event's workspace: each workspace of
  [[leanix.workspaces]] has its own): our write-back changes the Fact Sheet, LeanIX
  sends FACT_SHEET_UPDATED for it, and acting on it would start another run, forever.
  The actor is the top-level `userId` (DEFAULT) or, in WRAPPED_EVENT mode, where the
  envelope's is optional, the `payload.userId`; ours are the token's `sub` and
  `principal.id` (which one LeanIX sends is not documented) and the configured ids.
- Events older than one already handled for the same Fact Sheet and event type: LeanIX
  does not deliver in order, and a stale snapshot must not undo a newer decision. Events
  of another type are not held against each other: an UPDATED delivered before its
  CREATED must not cost the CREATED its run. A number outside 0..2^63-1 is ignored for
  ordering (the event is acted on, the number never stored); an absurd one inside it is
  replaced by the next real one (service/store/sequence.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from service import workspaces
from service.cloudevent import CloudEvent
from service.errors import RetryLater, VendorRejected, VendorUnavailable
from service.resources import Resources
from service.store import sequence as sequences
from service.store.ids import store_key

log = structlog.get_logger("service.automation")


def own_user_ids(resources: Resources, workspace_id: str | None = None) -> set[str]:
    """Our technical user's ids in the event's workspace (learnt from its token) and that
    workspace's configured ignore list."""
    workspace = resources.workspace(workspace_id)
    api = workspace.api if workspace is not None else resources.settings.clients.leanix
    ids = set(api.ignore_user_ids)
    client = resources.leanix_for(workspace_id)
    if client is not None:
        ids |= client.own_user_ids
    return {_folded(i) for i in ids}


def event_user_ids(data: Mapping[str, Any]) -> set[str]:
    """Who caused the event: the top-level `userId`, and `payload.userId` (WRAPPED_EVENT)."""
    payload = data.get("payload")
    found = [data.get("userId"), payload.get("userId") if isinstance(payload, Mapping) else None]
    return {_folded(text) for value in found if (text := user_id_text(value))}


def user_id_text(value: Any) -> str | None:
    """A user id as text: a string or an integer; anything else is no id."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def _folded(user_id: str) -> str:
    # UUIDs compare without regard to case: LeanIX writes them lowercase, a script may not.
    return user_id.strip().lower()


async def _learn_own_user(resources: Resources, workspace_id: str | None) -> None:
    """Make sure our technical user in the workspace is known: it is learnt from LeanIX's
    token, and a worker that has not written back there since it started has none yet."""
    client = resources.leanix_for(workspace_id)
    if client is None or client.own_user_ids:
        return
    try:
        await client.authenticate()
    except (VendorUnavailable, VendorRejected) as exc:
        raise RetryLater(f"cannot tell our own events from others' yet: {exc}") from None


def sequence_number(data: Mapping[str, Any]) -> int | None:
    """The event's transactionSequenceNumber: top-level (DEFAULT) or in the WRAPPED_EVENT
    `payload`; failing both, the envelope's `sequenceInfo` (an integer in LeanIX's model,
    whose meaning is not published, hence last). Anything but an integer is no number."""
    payload = data.get("payload")
    inner = payload.get("transactionSequenceNumber") if isinstance(payload, Mapping) else None
    for value in (data.get("transactionSequenceNumber"), inner, data.get("sequenceInfo")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


async def skip_reason(
    event: CloudEvent, fact_sheet_id: str | None, resources: Resources
) -> str | None:
    """Why this LeanIX event must be ignored, or None to act on it."""
    data = event.data if isinstance(event.data, Mapping) else {}
    workspace_id = workspaces.id_of(event.source)
    if resources.settings.automation.ignore_own_events:
        await _learn_own_user(resources, workspace_id)
        if event_user_ids(data) & own_user_ids(resources, workspace_id):
            return "caused by our own technical user"
    if fact_sheet_id and await _stale(event, fact_sheet_id, sequence_number(data), resources):
        return "older than an event of its type already handled for this Fact Sheet"
    return None


async def _stale(
    event: CloudEvent, fact_sheet_id: str, sequence: int | None, resources: Resources
) -> bool:
    """Whether a newer event of this type was handled for the Fact Sheet; a number the
    store cannot order by is ignored for ordering (logged), never stored."""
    if sequence is None:
        return False
    if not sequences.holds(sequence):
        reason = f"not a transactionSequenceNumber (0 to {sequences.MAX_SEQUENCE})"
        log.warning("sequence.ignored", sequence=str(sequence)[:40], reason=reason)
        return False
    # A sandbox copied from production may share its Fact Sheet ids (not documented):
    # with several workspaces, the newest number is kept per workspace too.
    several = bool(resources.settings.leanix.workspaces)
    scope = f"{workspaces.id_of(event.source)}/{fact_sheet_id}" if several else fact_sheet_id
    key = sequence_key(scope, event.type)
    return not await resources.database.sequences.advance(key, sequence, event.id)


def sequence_key(fact_sheet_id: str, event_type: str) -> str:
    """What the newest sequence number is kept per: the Fact Sheet and the event type
    (hashed when longer than the store's 100-character key)."""
    return store_key(f"{fact_sheet_id}/{event_type}")
