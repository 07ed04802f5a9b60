"""A handler module for the cluster failover test's worker (named in HANDLER_MODULES).

An idempotent counting handler: it adds one row per run to `cluster_counts` inside the
handler's transaction, which commits with the mark, so a count above one for an event is
an event handled twice. The test creates the table.
"""

from __future__ import annotations

import sqlalchemy as sa

from service import CloudEvent, Context, handler

COUNTS = sa.table("cluster_counts", sa.column("event_id", sa.String))


@handler("#", name="cluster.count", idempotent=True)
async def count(event: CloudEvent, context: Context) -> None:
    """Count this run of the event, exactly once with the mark."""
    async with context.transaction() as connection:
        await connection.execute(COUNTS.insert().values(event_id=event.id))
