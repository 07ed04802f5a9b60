"""The production-shaped benchmark's handler module (HANDLER_MODULES of its workers).

An idempotent handler, as a real rule's run is: it writes one row per run inside the
handler's transaction, which commits with the mark, so the store does per event what it
does in production (claim, mark, event log) plus one row of our own. The row carries
perf_counter at the handler's start (CLOCK_MONOTONIC: comparable with the load
generator's send times) for end-to-end latency. bench_prod.py creates the table.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from service import CloudEvent, Context, handler

STARTS = sa.table("bench_starts", sa.column("event_id", sa.String), sa.column("started", sa.Float))
CREATE = "CREATE TABLE bench_starts (event_id text NOT NULL, started double precision NOT NULL)"


@handler("#", name="bench.start", idempotent=True)
async def record(event: CloudEvent, context: Context) -> None:
    """Note when this run started, exactly once with the mark."""
    started = time.perf_counter()
    async with context.transaction() as connection:
        await connection.execute(STARTS.insert().values(event_id=event.id, started=started))
