"""Event ids of any length a CloudEvent allows, on both databases (issue 9, item 10).

PostgreSQL's `VARCHAR(100)` refused a longer id: the event was retried through its whole
schedule, then dead-lettered. Every store keyed by an event id now takes any id.
"""

from __future__ import annotations

import pytest

from service.runs import RunState
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.store.ids import HASHED, event_key, store_key

LONG = "e" * 300
HUGE = "h" * 100 * 1024
IDS = [
    pytest.param(LONG, id="300-characters"),
    pytest.param(HUGE, id="100-KiB"),
    pytest.param("nul\x00inside", id="with-NUL"),
    pytest.param("ü" * 100, id="100-umlauts"),
]


@pytest.mark.parametrize("event_id", IDS)
async def test_an_idempotent_handler_claims_and_marks_any_id(
    database: Database, event_id: str
) -> None:
    handled = database.handled
    assert await handled.claim(event_id, "h", lease_s=60) == "claimed"
    assert await handled.claim(event_id, "h", lease_s=60) == "busy"
    await handled.mark(event_id, "h")
    assert await handled.is_handled(event_id, "h")
    assert await handled.claim(event_id, "h", lease_s=60) == "done"
    await handled.release(event_id + "x", "h")  # another id: nothing to release


@pytest.mark.parametrize("event_id", IDS)
async def test_the_sequence_guard_records_any_id(database: Database, event_id: str) -> None:
    assert await database.sequences.advance("fs-1/leanix.factsheet.updated", 5, event_id)
    assert await database.sequences.advance("fs-1/leanix.factsheet.updated", 5, event_id)
    assert not await database.sequences.advance("fs-1/leanix.factsheet.updated", 5, "other")


@pytest.mark.parametrize("event_id", IDS)
async def test_a_run_started_and_completed_by_any_id(database: Database, event_id: str) -> None:
    run, created = await database.runs.begin(
        correlation_id="c-1", vendor="uipath", rule="r", event_id=event_id,
        fact_sheet_id="fs-1", target={}, inputs={},
    )  # fmt: skip
    assert created
    await database.runs.started("c-1", RunState("uipath", "7", "running"), 0.0)
    done = RunState("uipath", "7", "succeeded", "Successful")
    assert await database.runs.complete(run, done, event_id) is not None
    assert await database.runs.complete(run, done, event_id) is not None  # its own retry
    assert await database.runs.complete(run, done, event_id + "-other") is None


@pytest.mark.parametrize("event_id", IDS)
async def test_the_event_log_records_and_finds_any_id(database: Database, event_id: str) -> None:
    head = LoggedEvent(id=event_id, type="t", source="s", subject=None, time=None,
                       received_at=1.0, updated_at=1.0, status="handled", attempts=1,
                       last_error=None)  # fmt: skip
    await database.events.record(head, [Attempt("h", 1, "ok", None, 1.0, 0.5)], None)
    await database.events.record(head, [Attempt("h", 2, "ok", None, 2.0, 0.5)], None)
    found = await database.events.get(event_id)
    assert found is not None
    logged, attempts = found
    assert logged.id == event_key(event_id)
    assert [a.attempt for a in attempts] == [1, 2]


def test_keys_fit_and_never_collide() -> None:
    ids = [LONG, LONG + "x", HUGE, "short", "", HASHED + "abc", store_key(LONG), "nul\x00"]
    keys = [store_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all(len(k) <= 100 and "\x00" not in k for k in keys)
    assert store_key("94ae83bf-4ef3-50ce-8945-4999fc66f6bd") == (
        "94ae83bf-4ef3-50ce-8945-4999fc66f6bd"  # the ids the receiver makes: unchanged
    )
    assert store_key("x" * 100) == "x" * 100
    assert store_key(store_key(LONG)) != store_key(LONG)  # a hash-shaped id is hashed again
