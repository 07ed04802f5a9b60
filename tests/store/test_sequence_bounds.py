"""The sequence guard's bounds, on both databases (issue 9, item 9).

A transactionSequenceNumber of 2^63-1 blocked every later event of its type for that
Fact Sheet; 2^64-1 raised OverflowError, and the event was dead-lettered.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.store import Database
from service.store.schema import fact_sheet_sequence
from service.store.sequence import MAX_BEHIND, MAX_SEQUENCE, holds

KEY = "fs-1/leanix.factsheet.updated"


async def stored(database: Database) -> int | None:
    query = sa.select(fact_sheet_sequence.c.sequence).where(
        fact_sheet_sequence.c.fact_sheet_id == KEY
    )
    async with database.engine.connect() as connection:
        return (await connection.execute(query)).scalar()


@pytest.mark.parametrize("number", [2**63, 2**64 - 1, 2**100, -1, -(2**63)])
async def test_a_number_the_store_cannot_hold_is_refused_and_never_stored(
    database: Database, number: int
) -> None:
    assert not holds(number)
    with pytest.raises(ValueError, match="a sequence number is 0 to"):
        await database.sequences.advance(KEY, number, "e-absurd")
    assert await stored(database) is None
    assert await database.sequences.advance(KEY, 75086, "e-real")
    assert await stored(database) == 75086


@pytest.mark.parametrize("absurd", [MAX_SEQUENCE, MAX_SEQUENCE - 1, 10**15])
async def test_an_absurd_mark_is_replaced_by_the_next_real_event(
    database: Database, absurd: int
) -> None:
    sequences = database.sequences
    assert await sequences.advance(KEY, absurd, "e-absurd")  # in range: recorded...
    assert await sequences.advance(KEY, 24991511, "e-real")  # ...but blocks nothing
    assert await stored(database) == 24991511
    assert not await sequences.advance(KEY, 24991510, "e-older")  # real order holds again
    assert await sequences.advance(KEY, 24991512, "e-newer")


async def test_a_late_event_up_to_a_billion_behind_is_still_dropped(database: Database) -> None:
    sequences = database.sequences
    assert await sequences.advance(KEY, MAX_BEHIND + 100, "e-new")
    assert not await sequences.advance(KEY, 100, "e-exactly-a-billion-behind")
    assert await stored(database) == MAX_BEHIND + 100
    assert await sequences.advance(KEY, 99, "e-further-behind")  # the mark was not LeanIX's
    assert await stored(database) == 99


def test_the_store_holds_what_a_bigint_holds() -> None:
    assert holds(0) and holds(MAX_SEQUENCE)
    assert not holds(-1) and not holds(MAX_SEQUENCE + 1)
    assert MAX_SEQUENCE == 2**63 - 1
