"""Fact Sheet sequence: drop LeanIX events older than one already handled for the same sheet.

LeanIX does not deliver in order; each event carries a `transactionSequenceNumber`. The
store keeps the newest one per key (a Fact Sheet and event type) and accepts an event
only if it is newer, or is the very event already recorded (a retry of it must go
through). Two bounds keep one absurd number from blocking a Fact Sheet for good:

    outside 0..2^63-1 (a BIGINT)      -> not the store's to order: the caller ignores the
                                         number for ordering (`holds`); never stored
    the mark more than MAX_BEHIND
    (10^9) above the event's number   -> the mark is not LeanIX's, the event is: accepted,
                                         and its number replaces the mark

LeanIX's numbers are one counter of transactions (75,086 and 24,991,511 in the samples of
/work/shared/reference/leanix.md); a billion transactions between two deliveries about
one Fact Sheet is not a late delivery, so a genuinely stale event is never that far
behind, while a forged or corrupt 2^63-2 is replaced by the next real event.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.ids import event_key
from service.store.schema import fact_sheet_sequence as table

MAX_SEQUENCE = 2**63 - 1  # the column is a signed 64-bit BIGINT
MAX_BEHIND = 10**9  # a mark further ahead than this of a new event is replaced by it


def holds(sequence: int) -> bool:
    """Whether `sequence` is a number the store orders by (0 to 2^63-1)."""
    return 0 <= sequence <= MAX_SEQUENCE


class SequenceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def advance(self, fact_sheet_id: str, sequence: int, event_id: str) -> bool:
        """Record `sequence` for the Fact Sheet if it is the newest; False if it is stale.
        ValueError for a number the store does not hold (check `holds` first)."""
        if not holds(sequence):
            raise ValueError(f"a sequence number is 0 to {MAX_SEQUENCE}, not {sequence}")
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
            table.c.sequence - MAX_BEHIND > sequence,  # stored >= 0: no overflow
        )
        update = (
            table.update()
            .where(table.c.fact_sheet_id == fact_sheet_id, newer)
            .values(sequence=sequence, event_id=event_id, updated_at=now)
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(update)).rowcount == 1
