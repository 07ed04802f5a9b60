"""The journal: a delivery is logged before its message is settled, whatever the store does."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
import structlog

from service.cloudevent import CloudEvent
from service.settings import EventLogSettings
from service.store.eventlog import Attempt, LoggedEvent
from service.store.outages import unreachable
from service.worker.journal import MAX_ATTRIBUTES_BYTES, Entry, Journal, Ran, accepted_at
from service.worker.policy import Failure
from tests.waiting import eventually

EVENT = CloudEvent(id="e-1", source="s\x00rc", type="leanix.x", data={"n": 1}, time="t")


class Events:
    """An event log that fails as told: `errors` are raised in turn, then rows are kept."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.tries = 0
        self.rows: list[tuple[LoggedEvent, list[Attempt], bytes | None]] = []

    async def record(self, head: LoggedEvent, tries: list[Attempt], data: bytes | None) -> None:
        self.tries += 1
        if self.errors:
            raise self.errors.pop(0)
        self.rows.append((head, tries, data))


class Store:
    def __init__(self, events: Events) -> None:
        self.events = events


def journal(events: Events) -> Journal:
    return Journal(Store(events), EventLogSettings())  # type: ignore[arg-type]


def refused() -> Exception:
    return sa.exc.DBAPIError("INSERT", {}, ValueError("invalid byte sequence"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (sa.exc.OperationalError("SELECT", {}, Exception("database is locked")), True),
        (sa.exc.InterfaceError("SELECT", {}, Exception("connection is closed")), True),
        (sa.exc.DBAPIError("SELECT", {}, Exception("gone"), connection_invalidated=True), True),
        (refused(), False),
        (sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (ValueError("a bug"), False),
    ],
)
def test_unreachable_tells_not_now_from_never(error: Exception, expected: bool) -> None:
    assert unreachable(error) is expected


async def test_the_write_waits_while_the_store_is_unreachable() -> None:
    events = Events(*(ConnectionResetError("the store is away") for _ in range(3)))
    write = asyncio.create_task(journal(events).write(Entry(EVENT, 10, 1), {}))
    await eventually(lambda: events.tries >= 2, 10, "tried again")
    assert not write.done()  # the message waits: it is not settled unlogged
    async with asyncio.timeout(10):
        await write
    assert [head.status for head, _, _ in events.rows] == ["unhandled"]


async def test_a_row_the_store_refuses_is_written_without_payload_and_nuls() -> None:
    events = Events(refused())
    failed = Failure("h", "RetryLater: \udcff", retryable=True)
    await journal(events).write(Entry(EVENT, 10, 2, [Ran("h", failed, 1.0)]), {"h": "retry"})
    ((head, tries, data),) = events.rows
    assert (head.id, head.source, head.status, head.attempts, data) == (
        "e-1",
        "s\ufffdrc",
        "retrying",
        2,
        None,
    )
    assert tries[0].error == "RetryLater: ?"


async def test_a_row_refused_twice_is_given_up_and_logged() -> None:
    events = Events(refused(), refused())
    with structlog.testing.capture_logs() as logs:
        await journal(events).write(Entry(EVENT, 10, 1), {})
    assert events.tries == 2
    assert events.rows == []
    assert [e["event"] for e in logs] == ["eventlog.row_refused", "eventlog.write_refused"]


async def test_a_disabled_log_writes_nothing() -> None:
    events = Events()
    off = Journal(Store(events), EventLogSettings(enabled=False))  # type: ignore[arg-type]
    await off.write(Entry(EVENT, 10, 1), {})
    assert events.tries == 0


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-01T00:00:01.250Z", 1704067201.25),
        ("2024-01-01T01:00:01.250+01:00", 1704067201.25),
        ("2024-01-01T00:00:01.250", 1704067201.25),  # no offset: UTC, as the receiver writes
        ("yesterday", None),
        (17, None),
    ],
)
def test_the_receivers_accept_time_is_read_from_receivedat(stamp: object, expected: object) -> None:
    event = CloudEvent("e-1", "src", "a.b", "t", extensions={"receivedat": stamp})  # type: ignore[dict-item]
    assert accepted_at(event) == expected
    assert accepted_at(EVENT) is None


def test_a_delivery_keeps_the_attributes_to_rebuild_the_event_from() -> None:
    event = CloudEvent("e-1", "src", "a.b", "t", "fs-1", {"n": 1}, {"traceparent": "00-x"})
    head, _, _ = journal(Events())._rows(Entry(event, 10, 1), {})
    assert head.attributes == event.attributes()
    huge = CloudEvent("e-2", "src", "a.b", "t", extensions={"x": "y" * MAX_ATTRIBUTES_BYTES})
    head, _, _ = journal(Events())._rows(Entry(huge, 10, 1), {})
    assert head.attributes is None
