"""A dead worker's claims are taken over within a lease of RabbitMQ redelivering its events.

Two worker processes with the default `worker.claim_lease_s` (10 s); an idempotent
handler works 30 s on its first delivery. The worker running it is SIGKILLed: RabbitMQ
redelivers the event to the other at once, which waits in-process for the dead claim to
lapse, takes it over and runs the handler, knowing it is a redelivery.
"""

from __future__ import annotations

import pytest

from service.settings import WorkerSettings
from tests.hostile.ledger_fleet import Fleet, Worker, fleet
from tests.waiting import eventually

pytestmark = pytest.mark.integration
__all__ = ["fleet"]

LEASE_S = WorkerSettings().claim_lease_s


def _lines(fleet: Fleet, name: str) -> list[list[str]]:
    path = fleet.directory / name
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


async def _start(fleet: Fleet) -> Worker:
    worker = await fleet.start("takeover", {"LEDGER_SLOW_S": "30"})
    await eventually(lambda: fleet.consuming(worker), 30, "a worker consumes")
    return worker


async def test_a_killed_workers_claim_is_taken_over_within_a_lease(fleet: Fleet) -> None:
    workers = {w.pid: w for w in [await _start(fleet), await _start(fleet)]}
    await fleet.publish(["takeover-1"])
    await eventually(lambda: _lines(fleet, "takeover-started.txt"), 20, "the handler started")
    first = workers.pop(int(_lines(fleet, "takeover-started.txt")[0][1]))
    killed_at = await fleet.kill(first)

    await eventually(lambda: _lines(fleet, "takeover-effects.txt"), 2 * LEASE_S, "taken over")
    (second,) = workers.values()
    _, pid, redelivered, started_at = _lines(fleet, "takeover-started.txt")[-1]
    took_s = float(started_at) - killed_at
    print(f"\ntaken over {took_s:.1f} s after the SIGKILL (claim lease {LEASE_S:.0f} s)")
    assert (int(pid), redelivered) == (second.pid, "True")
    assert took_s <= LEASE_S + 2  # the rest of the dead claim's lease, and one look more
    assert _lines(fleet, "takeover-effects.txt") == [["takeover-1", str(second.pid)]]
    await fleet.stop_all()
    rows = await fleet.query("SELECT status, attempts FROM events WHERE id = 'takeover-1'")
    assert [(r["status"], r["attempts"]) for r in rows] == [("handled", 1)]
    assert all(depth == 0 for depth in (await fleet.depths()).values())
