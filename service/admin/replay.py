"""Replaying events from the console: any event, or every event a search matches.

An event still in the dead-letter queue is republished from there (its original body and
headers, `deadletters.DeadLetterQueue`); any other is rebuilt from the event log (every
CloudEvent context attribute as it was on the wire, extensions such as `receivedat` and
`authsource` too, and its data) and published to the events exchange with its own id.
A replay changes no CloudEvent attribute: only the message's headers (our bookkeeping
goes, `x-bridge-replayed-at` comes) and the bytes of `data` (re-serialised, equal as JSON).
Kept `receivedat` means an event's latency counts from its first acceptance.
Each is first noted in the event log, with the name of the key that asked, so the event's
history shows who replayed it and the delivery's own write lands after the note.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime

from service.bus.broker import Broker
from service.cloudevent import CloudEvent, encode, from_document
from service.deadletters import REPLAY_TIMEOUT_S, DeadLetterQueue, replay_all
from service.store import Database
from service.store.eventlog import EventLog, EventQuery, LoggedEvent


class TooMany(ValueError):
    """More events match than one replay may send back."""


async def matching(log: EventLog, query: EventQuery, limit: int) -> list[LoggedEvent]:
    """Every event the search matches, newest first; TooMany over `limit`."""
    found: list[LoggedEvent] = []
    cursor: str | None = None
    while True:
        page, cursor = await log.search(EventQuery(**{**vars(query), "cursor": cursor}))
        found.extend(page)
        if len(found) > limit:
            raise TooMany(f"more than {limit} events match: narrow the filters")
        if cursor is None:
            return found


async def by_ids(log: EventLog, ids: Iterable[str]) -> list[LoggedEvent]:
    """The logged events among `ids`, in the order given."""
    found = []
    for event_id in dict.fromkeys(ids):
        logged = await log.get(event_id)
        if logged is not None:
            found.append(logged[0])
    return found


async def replay(
    broker: Broker, database: Database, chosen: list[LoggedEvent], by: str
) -> tuple[list[str], list[str]]:
    """Send `chosen` back to the work queue: (ids replayed, ids that could not be)."""
    if not chosen:
        return [], []
    dlq = DeadLetterQueue(broker)
    try:
        letters = await dlq.read(e.id for e in chosen)
        queued = {letter.id for letter in letters}
        ready = [e for e in chosen if e.id in queued or e.data is not None]
        for event in ready:
            await database.events.replayed(event.id, by, time.time())
        await replay_all(dlq, letters)
        for event in ready:
            if event.id not in queued:
                await _from_log(broker, event)
    finally:
        await dlq.release()
    done = {e.id for e in ready}
    return [e.id for e in ready], [e.id for e in chosen if e.id not in done]


def rebuilt(event: LoggedEvent) -> CloudEvent:
    """The CloudEvent as it was on the wire; from the columns for an event logged before
    its attributes were kept (its extensions are lost)."""
    if event.attributes:
        return from_document({**event.attributes, "data": event.data})
    return CloudEvent(event.id, event.source, event.type, event.time or "", event.subject,
                      event.data)  # fmt: skip


async def _from_log(broker: Broker, event: LoggedEvent) -> None:
    cloud = rebuilt(event)
    await broker.publish(
        encode(cloud),
        routing_key=cloud.type,
        message_id=cloud.id,
        timeout_s=REPLAY_TIMEOUT_S,
        headers={"x-bridge-replayed-at": datetime.now(UTC).isoformat()},
    )
