"""A delivery cancelled while its idempotent handler runs gives its claim up.

aiormq cancels a channel's consumer tasks when the channel closes (its node stopped, the
connection failed over): the broker delivers the message again, and that redelivery must
find the claim free. Kept, the claim was renewed for the life of the worker process, and
every redelivery found it busy, for ever (seen in tests/faults/test_cluster_failover.py:
four events of 2,214 never handled).
"""

from __future__ import annotations

import asyncio

from service.cloudevent import CloudEvent
from service.settings import WorkerSettings
from service.store import Database
from service.worker.claims import Claims, Held
from service.worker.context import Context, Services
from service.worker.dispatcher import Dispatcher
from service.worker.registry import Registry
from tests.waiting import eventually

LEASE_S = 30.0  # far longer than the test: only a release frees the claim in time


async def test_a_cancelled_delivery_releases_its_claim(database: Database) -> None:
    registry, running = Registry(), asyncio.Event()

    @registry.handler("#", name="h", idempotent=True)
    async def hang(event: CloudEvent, context: Context) -> None:
        running.set()
        await asyncio.Event().wait()  # until cancelled

    claims = Claims(database.handled, LEASE_S, 300)
    dispatcher = Dispatcher(WorkerSettings(), registry, Services(), claims)
    event = CloudEvent(id="e-cancelled", source="test", type="t", time="2026-01-01T00:00:00Z")
    delivery = asyncio.create_task(
        dispatcher.dispatch(event, dispatcher.handlers("t"), redelivered=False, attempt=1)
    )
    await asyncio.wait_for(running.wait(), 10)
    delivery.cancel()
    await asyncio.gather(delivery, return_exceptions=True)

    other = Claims(database.handled, LEASE_S, 300)  # the redelivery, in another worker
    held = await eventually(lambda: _claim(other), 10, "the claim released")
    assert await other.mark(held)
    assert not claims._held  # nothing left for the heartbeat to renew


async def _claim(claims: Claims) -> Held | None:
    """The redelivery's claim, if it could take it (ClaimBusy would wait a lease)."""
    outcome = await claims.store.claim("e-cancelled", "h", LEASE_S, token="redelivery")
    return Held("e-cancelled", "h", "redelivery", 0.0) if outcome == "claimed" else None
