"""The event log is complete: every event a worker settled is in it, whatever crashed.

Real worker processes, the real RabbitMQ and PostgreSQL; SIGKILLs mid-stream, and a store
outage (a TCP proxy in front of PostgreSQL, cut). An event is settled once the broker no
longer holds it: after the run, every worker is stopped and every queue is empty.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.hostile.ledger_fleet import Fleet, Worker, fleet
from tests.waiting import eventually

pytestmark = pytest.mark.integration
__all__ = ["fleet"]

EVENTS = 200
KILLS = 3
OUTAGE_S = 10.0  # how long the store stays away (the fault itself, not a wait for a result)
WORKER = {"prefetch": 4, "claim_lease_s": 3.0}


def _ids(tag: str) -> list[str]:
    return [f"{tag}-{n:04d}" for n in range(EVENTS)]


def _done(fleet: Fleet, name: str) -> set[str]:
    path = fleet.directory / name
    text = path.read_text() if path.exists() else ""
    return {line.split()[0] for line in text.splitlines()}


async def _handled(fleet: Fleet) -> int:
    """Events both handlers finished (at least once)."""
    return len(_done(fleet, "plain.txt") & _done(fleet, "claimed.txt"))


async def _settled(fleet: Fleet, ids: list[str]) -> tuple[int, dict[str, int]]:
    """Stop every worker, then (events in the log among `ids`, queue depths)."""
    await fleet.stop_all()
    rows = await fleet.query("SELECT id, status FROM events WHERE id = ANY($1)", ids)
    assert {r["status"] for r in rows} <= {"handled"}
    return len(rows), await fleet.depths()


async def _start(fleet: Fleet) -> Worker:
    worker = await fleet.start("plain,claimed", {"LEDGER_SLOW_S": "0.1"}, **WORKER)
    await eventually(lambda: fleet.consuming(worker), 30, "a worker consumes")
    return worker


async def test_every_event_settled_is_in_the_log_after_sigkills(fleet: Fleet) -> None:
    workers = [await _start(fleet), await _start(fleet)]
    ids = _ids("kill")
    await fleet.publish(ids)
    for kill in range(KILLS):  # kill mid-stream, each time the one that worked last
        await eventually(lambda k=kill: _handled_over(fleet, (k + 1) * EVENTS // 5), 30, "progress")
        victim = _busiest(fleet, workers)
        await fleet.kill(victim)
        workers = [w for w in workers if w is not victim] + [await _start(fleet)]
    await eventually(lambda: _all_handled(fleet), 40, f"all {EVENTS} events handled")
    logged, depths = await _settled(fleet, ids)
    left = sum(depths.values())
    print(f"\nevent log: {logged} of {EVENTS} events after {KILLS} SIGKILLs; {left} left queued")
    assert all(depth == 0 for depth in depths.values())  # the broker holds nothing: all settled
    assert logged == EVENTS


async def test_every_event_settled_is_in_the_log_across_a_store_outage(fleet: Fleet) -> None:
    workers = [await _start(fleet), await _start(fleet)]
    ids = _ids("outage")
    await fleet.publish(ids)
    await eventually(lambda: _handled_over(fleet, EVENTS // 5), 30, "progress")
    fleet.proxy.cut()
    await eventually(lambda: all(w.logged("store.unreachable") for w in workers), 20, "waiting")
    stalled = await _handled(fleet)
    await asyncio.sleep(OUTAGE_S)
    assert await _handled(fleet) - stalled <= 2 * WORKER["prefetch"]  # they stall: none acked
    fleet.proxy.restore()
    await eventually(lambda: _all_handled(fleet), 40, f"all {EVENTS} events handled")
    logged, depths = await _settled(fleet, ids)
    print(f"\nevent log: {logged} of {EVENTS} events across a {OUTAGE_S:.0f} s store outage")
    assert all(depth == 0 for depth in depths.values())
    assert logged == EVENTS


async def _handled_over(fleet: Fleet, count: int) -> bool:
    return await _handled(fleet) >= count


async def _all_handled(fleet: Fleet) -> bool:
    return await _handled(fleet) == EVENTS


def _busiest(fleet: Fleet, workers: list[Worker]) -> Worker:
    """The live worker that finished the latest event: it has events in flight."""
    lines = (fleet.directory / "plain.txt").read_text().splitlines()
    pids = {w.pid: w for w in workers}
    for line in reversed(lines):
        pid = int(line.split()[1])
        if pid in pids:
            return pids[pid]
    return workers[0]
