"""The event log on both databases: record, search with cursors, one event, prune."""

from __future__ import annotations

import pytest

from service.store import Database
from service.store.eventlog import Attempt, EventQuery, LoggedEvent, decode_cursor


def event(n: int, type_: str = "leanix.factsheet.updated", status: str = "handled") -> LoggedEvent:
    return LoggedEvent(
        id=f"e-{n:03}", type=type_, source="leanix:ws", subject=f"fs-{n % 2}", time=None,
        received_at=1000.0 + n, updated_at=1000.0 + n, status=status, attempts=1, last_error=None,
    )  # fmt: skip


async def test_record_and_get_with_attempts(database: Database) -> None:
    log = database.events
    first = event(1, status="retrying")
    await log.record(first, [Attempt("h", 1, "retry", "Boom", 1001.0, 3.5)], b'{"x": 1}')
    later = LoggedEvent(**{**vars(first), "status": "handled", "attempts": 2, "updated_at": 1005.0})
    await log.record(later, [Attempt("h", 2, "ok", None, 1005.0, 1.25)], b'{"x": 1}')
    found = await log.get("e-001")
    assert found is not None
    head, tries = found
    assert (head.status, head.attempts, head.received_at, head.data) == (
        "handled",
        2,
        1001.0,
        {"x": 1},
    )
    assert [(t.attempt, t.outcome, t.error) for t in tries] == [
        (1, "retry", "Boom"),
        (2, "ok", None),
    ]
    assert await log.get("nope") is None


async def test_text_a_sender_chose_is_cut_to_fit_its_column(database: Database) -> None:
    too_long = {"type": "x." * 150, "source": "s" * 400, "subject": "f" * 250,
                "time": "2026-11-22T10:00:00" + "0" * 60}  # fmt: skip
    long = LoggedEvent(**{**vars(event(7)), **too_long})
    await database.events.record(long, [], None)
    found = await database.events.get("e-007")
    assert found is not None
    head, _ = found
    assert (len(head.type), len(head.source), len(head.subject or ""), len(head.time or "")) == (
        200, 300, 200, 50,
    )  # fmt: skip


async def test_search_filters_and_pages(database: Database) -> None:
    log = database.events
    for n in range(7):
        await log.record(
            event(n, "uipath.job.completed" if n % 3 == 0 else "leanix.factsheet.updated"), [], None
        )
    page, cursor = await log.search(EventQuery(limit=3))
    assert [e.id for e in page] == ["e-006", "e-005", "e-004"]
    assert cursor is not None
    page2, cursor2 = await log.search(EventQuery(limit=3, cursor=cursor))
    assert [e.id for e in page2] == ["e-003", "e-002", "e-001"]
    page3, cursor3 = await log.search(EventQuery(limit=3, cursor=cursor2))
    assert [e.id for e in page3] == ["e-000"] and cursor3 is None
    uipath, _ = await log.search(EventQuery(type="uipath.*"))
    assert [e.id for e in uipath] == ["e-006", "e-003", "e-000"]
    assert len((await log.search(EventQuery(type="uipath.job.completed")))[0]) == 3
    assert len((await log.search(EventQuery(subject="fs-1")))[0]) == 3
    window, _ = await log.search(EventQuery(since=1002.0, until=1004.0))
    assert [e.id for e in window] == ["e-003", "e-002"]
    assert await log.counts() == {"handled": 7}


async def test_prune_removes_old_events_and_their_attempts(database: Database) -> None:
    log = database.events
    await log.record(event(1), [Attempt("h", 1, "ok", None, 1001.0, 1.0)], None)
    await log.record(event(9), [], None)
    assert await log.prune(older_than=1005.0) == 1
    assert await log.get("e-001") is None
    assert await log.get("e-009") is not None


def test_a_foreign_cursor_is_refused() -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor("garbage!!")


async def test_a_late_write_of_an_earlier_delivery_keeps_the_later_status(
    database: Database,
) -> None:
    """A delivery whose write waited for the store lands after a later delivery's."""
    log = database.events
    retry = LoggedEvent(**{**vars(event(7)), "status": "retrying", "updated_at": 1010.0})
    handled = LoggedEvent(**{**vars(event(7)), "attempts": 2, "updated_at": 1020.0})
    await log.record(handled, [Attempt("h", 2, "ok", None, 1020.0, 1.0)], None)
    await log.record(retry, [Attempt("h", 1, "retry", "Boom", 1010.0, 1.0)], None)
    same_attempt_older = LoggedEvent(
        **{**vars(handled), "status": "retrying", "updated_at": 1015.0}
    )
    await log.record(same_attempt_older, [], None)
    found = await log.get("e-007")
    assert found is not None
    head, tries = found
    assert (head.status, head.attempts, head.updated_at) == ("handled", 2, 1020.0)
    assert sorted(t.attempt for t in tries) == [1, 2]  # the history keeps both
