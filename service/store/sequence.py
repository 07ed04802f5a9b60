"""Fact Sheet sequence: drop LeanIX events older than one already handled for the same sheet.

LeanIX does not deliver in order; each event carries a `transactionSequenceNumber`. The
store keeps the newest one per Fact Sheet and accepts an event only if it is newer, or
is the very event already recorded (a retry of it must go through).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.ids import event_key
from service.store.schema import fact_sheet_sequence as table


class SequenceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def advance(self, fact_sheet_id: str, sequence: int, event_id: str) -> bool:
        """Record `sequence` for the Fact Sheet if it is the newest; False if it is stale."""
        now, event_id = time.time(), event_key(event_id)
        try:
            async with self.engine.begin() as connection:
                values = {"sequence": sequence, "event_id": event_id, "updated_at": now}
                await connection.execute(
                    table.insert().values(fact_sheet_id=fact_sheet_id, **values)
                )
            return True
        except sa.exc.IntegrityError:
            pass
        newer = sa.or_(
            table.c.sequence < sequence,
            sa.and_(table.c.sequence == sequence, table.c.event_id == event_id),
        )
        update = (
            table.update()
            .where(table.c.fact_sheet_id == fact_sheet_id, newer)
            .values(sequence=sequence, event_id=event_id, updated_at=now)
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(update)).rowcount == 1
