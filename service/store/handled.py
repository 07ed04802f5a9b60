"""Handled events: what makes a handler's side effects happen once per event id.

A delivery claims (event id, handler) before the work and marks it handled after. A
second delivery finds the claim: handled -> skip; claimed less than a lease ago -> the
work is under way elsewhere, retry later; older -> its worker died, take it over.
Event ids of any length are keyed through `ids.event_key`.
"""

from __future__ import annotations

import time
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.ids import event_key
from service.store.schema import handled

Claim = Literal["claimed", "done", "busy"]


class HandledStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(self, event_id: str, handler: str, lease_s: float) -> Claim:
        """Claim the work of `handler` on this event."""
        now, event_id = time.time(), event_key(event_id)
        try:
            async with self.engine.begin() as connection:
                row = {"event_id": event_id, "handler": handler, "claimed_at": now}
                await connection.execute(handled.insert().values(**row))
            return "claimed"
        except sa.exc.IntegrityError:
            pass
        key = sa.and_(handled.c.event_id == event_id, handled.c.handler == handler)
        stale = sa.and_(key, handled.c.handled_at.is_(None), handled.c.claimed_at < now - lease_s)
        async with self.engine.begin() as connection:
            if (
                await connection.execute(handled.update().where(stale).values(claimed_at=now))
            ).rowcount:
                return "claimed"
            done = await connection.execute(sa.select(handled.c.handled_at).where(key))
            return "done" if done.scalar() is not None else "busy"

    async def mark(self, event_id: str, handler: str) -> None:
        """Record that `handler` finished this event."""
        event_id = event_key(event_id)
        key = sa.and_(handled.c.event_id == event_id, handled.c.handler == handler)
        async with self.engine.begin() as connection:
            await connection.execute(handled.update().where(key).values(handled_at=time.time()))

    async def release(self, event_id: str, handler: str) -> None:
        """Drop an unfinished claim, so the event's retry can claim it at once."""
        event_id = event_key(event_id)
        key = sa.and_(
            handled.c.event_id == event_id,
            handled.c.handler == handler,
            handled.c.handled_at.is_(None),
        )
        async with self.engine.begin() as connection:
            await connection.execute(handled.delete().where(key))

    async def is_handled(self, event_id: str, handler: str) -> bool:
        """Whether `handler` already finished its work for this event."""
        event_id = event_key(event_id)
        query = sa.select(handled.c.handled_at).where(
            handled.c.event_id == event_id, handled.c.handler == handler
        )
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar() is not None
