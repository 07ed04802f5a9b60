"""What `idempotent=True` promises, measured with SIGKILLs between an effect and its done mark.

Two idempotent handlers run on every event: `external` calls a "vendor" (a table keyed by
`context.idempotency_key`; it also counts every call) and then takes LEDGER_WINDOW_S to
return, the window in which a kill leaves its effect unmarked; `stored` writes its effect
in `context.transaction()`, which commits with the done mark. Workers are killed while
`external` is in that window: it runs again (the README says so), the vendor keeps one
effect per key, and the stored effect happens once.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.hostile.ledger_fleet import Fleet, Worker, fleet
from tests.waiting import eventually

pytestmark = pytest.mark.integration
__all__ = ["fleet"]

EVENTS = 120
KILLS = 3
WORKER = {"prefetch": 4, "claim_lease_s": 3.0}
HANDLERS = {"LEDGER_WINDOW_S": "0.3"}


async def _start(fleet: Fleet) -> Worker:
    worker = await fleet.start("external,stored", HANDLERS, **WORKER)
    await eventually(lambda: fleet.consuming(worker), 30, "a worker consumes")
    return worker


def _calls(fleet: Fleet) -> list[tuple[str, int]]:
    """(event id, pid) of every call `external` made to the vendor, in order."""
    path = fleet.directory / "external-calls.txt"
    text = path.read_text() if path.exists() else ""
    return [(words[0], int(words[1])) for words in map(str.split, text.splitlines())]


async def _done(fleet: Fleet) -> bool:
    rows = await fleet.query("SELECT count(*) AS n FROM handled WHERE handled_at IS NOT NULL")
    return rows[0]["n"] == 2 * EVENTS


async def test_a_kill_between_effect_and_mark_repeats_only_unkeyed_effects(fleet: Fleet) -> None:
    await fleet.execute(
        "CREATE TABLE vendor_effects (key text PRIMARY KEY, event_id text NOT NULL,"
        " calls integer NOT NULL DEFAULT 1);"
        "CREATE TABLE stored_effects (id serial PRIMARY KEY, event_id text NOT NULL, pid integer)"
    )
    workers = [await _start(fleet), await _start(fleet)]
    await fleet.publish(f"once-{n:04d}" for n in range(EVENTS))
    for kill in range(KILLS):
        seen = (kill + 1) * EVENTS // 5
        await eventually(lambda n=seen: len(_calls(fleet)) >= n, 30, "progress")
        victim = next(w for w in workers if w.pid == _calls(fleet)[-1][1])  # in its window
        await fleet.kill(victim)
        workers = [w for w in workers if w is not victim] + [await _start(fleet)]
    await eventually(lambda: _done(fleet), 45, "every handler marked done on every event")
    await fleet.stop_all()

    calls = Counter(event for event, _ in _calls(fleet))
    vendor = await fleet.query("SELECT event_id, calls FROM vendor_effects")
    stored = Counter(
        r["event_id"] for r in await fleet.query("SELECT event_id FROM stored_effects")
    )
    logged = await fleet.query("SELECT count(*) AS n FROM events WHERE status = 'handled'")
    twice = sorted(event for event, n in calls.items() if n > 1)
    print(
        f"\nafter {KILLS} SIGKILLs: external effect ran twice for {len(twice)} of {EVENTS} events"
        f" ({sum(calls.values())} calls); vendor effects keyed by context.idempotency_key:"
        f" {len(vendor)} for {EVENTS} events, 0 twice; stored in context.transaction():"
        f" {sum(stored.values())} for {EVENTS} events, {sum(n > 1 for n in stored.values())}"
        f" twice; event log: {logged[0]['n']} of {EVENTS} handled"
    )
    assert len(calls) == EVENTS
    assert twice  # the window is real: a kill in it repeats the handler...
    assert {r["event_id"] for r in vendor if r["calls"] > 1} <= set(twice)  # ...with its key
    assert len(vendor) == EVENTS  # so the keyed effect happened once per event
    assert stored == Counter({f"once-{n:04d}": 1 for n in range(EVENTS)})
    assert logged[0]["n"] == EVENTS
