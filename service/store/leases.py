"""Leases: one holder of a named job at a time, across every replica sharing the store.

A holder takes a lease for `lease_s` and renews it while alive; a holder that dies stops
renewing, and its lease lapses and may be taken by another. Taking and renewing are one
conditional statement each (insert, or update where lapsed or already ours), so two
replicas racing for a lease never both hold it, as long as their clocks agree to well
within a lease. It must never extend or drop a lease another holder took over.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.schema import leases


class LeaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def acquire(self, name: str, holder: str, lease_s: float) -> bool:
        """Take or renew the lease `name` for `lease_s` as `holder`; False if another holds it."""
        now = time.time()
        values = {"holder": holder, "until": now + lease_s}
        try:
            async with self.engine.begin() as connection:
                row = {"name": name, "acquired_at": now, **values}
                await connection.execute(leases.insert().values(**row))
            return True
        except sa.exc.IntegrityError:
            pass
        ours_or_lapsed = sa.and_(
            leases.c.name == name, sa.or_(leases.c.holder == holder, leases.c.until < now)
        )
        taken = sa.case((leases.c.holder == holder, leases.c.acquired_at), else_=now)
        statement = leases.update().where(ours_or_lapsed).values(acquired_at=taken, **values)
        async with self.engine.begin() as connection:
            return bool((await connection.execute(statement)).rowcount)

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up (if still ours), so another replica takes it at once."""
        mine = sa.and_(leases.c.name == name, leases.c.holder == holder)
        async with self.engine.begin() as connection:
            await connection.execute(leases.delete().where(mine))

    async def holder(self, name: str) -> str | None:
        """Who holds the lease `name` now; None if nobody (or it lapsed)."""
        query = sa.select(leases.c.holder).where(
            leases.c.name == name, leases.c.until >= time.time()
        )
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar()
