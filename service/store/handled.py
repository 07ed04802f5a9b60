"""Handled events: what makes a handler's side effects happen once per event id.

A delivery claims (event id, handler) before the work and marks it handled after. The
claim carries a token (which delivery holds it) and a lease its worker renews while the
handler runs. A second delivery finds the claim: handled -> skip; leased -> the work is
under way elsewhere; lapsed -> its worker died (or lost the store), take it over. A mark
or a release names its token, so a delivery whose claim was taken over changes nothing.
Each may run twice (connections.reconnecting): a claim its own token already holds is
claimed again. Event ids of any length are keyed through `ids.event_key`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.store.connections import autocommit, reconnecting
from service.store.ids import event_key
from service.store.schema import handled

Claim = Literal["claimed", "done", "busy"]


def _key(event_id: str, handler: str) -> sa.ColumnElement[bool]:
    return sa.and_(handled.c.event_id == event_key(event_id), handled.c.handler == handler)


def _held_by(event_id: str, handler: str, token: str | None) -> sa.ColumnElement[bool]:
    key = _key(event_id, handler)
    return key if token is None else sa.and_(key, handled.c.token == token)


def _lapsed(now: float, legacy_lease_s: float) -> sa.ColumnElement[bool]:
    """Unfinished, and its lease ran out (a row without a lease: `legacy_lease_s` after
    its claim, as workers that predate leases never renew)."""
    lease = sa.or_(
        handled.c.lease_until < now,
        sa.and_(handled.c.lease_until.is_(None), handled.c.claimed_at < now - legacy_lease_s),
    )
    return sa.and_(handled.c.handled_at.is_(None), lease)


def _ours(event_id: str, handler: str, token: str | None) -> sa.ColumnElement[bool]:
    """Unfinished and held as `token`: a claim whose first try committed unanswered."""
    if token is None:
        return sa.false()
    return sa.and_(_held_by(event_id, handler, token), handled.c.handled_at.is_(None))


class HandledStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.single = autocommit(engine)  # one statement: no BEGIN/COMMIT round trips

    async def claim(
        self,
        event_id: str,
        handler: str,
        lease_s: float,
        *,
        token: str | None = None,
        legacy_lease_s: float | None = None,
    ) -> Claim:
        """Claim the work of `handler` on this event for `lease_s`, as `token`."""
        return await reconnecting(
            lambda: self._claim(event_id, handler, lease_s, token, legacy_lease_s), "handled.claim"
        )

    async def _claim(
        self,
        event_id: str,
        handler: str,
        lease_s: float,
        token: str | None,
        legacy_lease_s: float | None,
    ) -> Claim:
        now = time.time()
        held = {"claimed_at": now, "token": token, "lease_until": now + lease_s}
        try:
            async with self.single.begin() as connection:
                row = {"event_id": event_key(event_id), "handler": handler, **held}
                await connection.execute(handled.insert().values(**row))
            return "claimed"
        except sa.exc.IntegrityError:
            pass
        key = _key(event_id, handler)
        lapsed = _lapsed(now, lease_s if legacy_lease_s is None else legacy_lease_s)
        takeable = sa.and_(key, sa.or_(lapsed, _ours(event_id, handler, token)))
        async with self.engine.begin() as connection:
            if (await connection.execute(handled.update().where(takeable).values(**held))).rowcount:
                return "claimed"
            done = await connection.execute(sa.select(handled.c.handled_at).where(key))
            return "done" if done.scalar() is not None else "busy"

    async def renew(self, tokens: Collection[str], lease_s: float) -> set[str]:
        """Extend the unfinished claims held as `tokens` to `lease_s` from now; the tokens
        still held (a claim that lapsed and was taken over is not)."""
        if not tokens:
            return set()
        statement = (
            handled.update()
            .where(handled.c.token.in_(list(tokens)), handled.c.handled_at.is_(None))
            .values(lease_until=time.time() + lease_s)
            .returning(handled.c.token)
        )

        async def renew() -> set[str]:
            async with self.single.begin() as connection:
                return {str(token) for token in (await connection.execute(statement)).scalars()}

        return await reconnecting(renew, "handled.renew")

    async def mark(self, event_id: str, handler: str, token: str | None = None) -> bool:
        """Record that `handler` finished this event; False if `token` no longer holds it."""

        async def mark() -> bool:
            async with self.single.begin() as connection:
                return await self.mark_in(connection, event_id, handler, token)

        return await reconnecting(mark, "handled.mark")

    async def mark_in(
        self, connection: AsyncConnection, event_id: str, handler: str, token: str | None = None
    ) -> bool:
        """`mark`, inside the caller's transaction: it commits with the caller's writes."""
        first = sa.func.coalesce(handled.c.handled_at, time.time())  # a second mark keeps it
        statement = handled.update().where(_held_by(event_id, handler, token))
        return bool((await connection.execute(statement.values(handled_at=first))).rowcount)

    async def release(self, event_id: str, handler: str, token: str | None = None) -> None:
        """Drop an unfinished claim (held as `token`), so the event's retry can claim it at once."""
        unfinished = sa.and_(_held_by(event_id, handler, token), handled.c.handled_at.is_(None))

        async def release() -> None:
            async with self.single.begin() as connection:
                await connection.execute(handled.delete().where(unfinished))

        await reconnecting(release, "handled.release")

    async def is_handled(self, event_id: str, handler: str) -> bool:
        """Whether `handler` already finished its work for this event."""
        query = sa.select(handled.c.handled_at).where(_key(event_id, handler))
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar() is not None
