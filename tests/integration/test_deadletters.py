"""Dead letters: listed and shown from the event log (the queue untouched), paged and
filtered like the events; replayed through the normal path, from the dead-letter queue."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from service.admin.dead_letters import run_command
from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.deadletters import DeadLetterQueue, readers_lock
from service.errors import RejectEvent
from service.settings import Settings
from service.store import Database
from service.store.eventlog import Attempt, EventQuery, LoggedEvent
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests.integration.conftest import Inspector
from tests.waiting import eventually, poll_interval

pytestmark = pytest.mark.integration


def body(event_id: str, type_: str) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "test", "type": type_,
         "time": "2024-01-01T00:00:00Z", "data": {"n": event_id}}
    )  # fmt: skip


async def publish(broker: Broker, event_id: str, type_: str) -> None:
    await broker.publish(body(event_id, type_), routing_key=type_, message_id=event_id, timeout_s=5)


@pytest.fixture
async def dead_letters(
    settings: Settings, broker: Broker, inspector: Inspector, db: Database
) -> AsyncIterator[dict[str, int]]:
    """Three events dead-lettered (and logged) by a handler that refused them; `calls`
    counts handlers."""
    calls = {"steady": 0, "picky": 0}
    registry = Registry()

    @registry.handler("#", name="steady")
    async def steady(event: CloudEvent, context: Context) -> None:
        calls["steady"] += 1

    @registry.handler("#", name="picky")
    async def picky(event: CloudEvent, context: Context) -> None:
        calls["picky"] += 1
        raise RejectEvent("not today")

    consumer = Consumer(settings, broker, registry, database=db)
    await consumer.start()
    events = (("d-1", "uipath.job.faulted"), ("d-2", "uipath.job.completed"),
              ("d-3", "leanix.factsheet.updated"))  # fmt: skip
    for count, (event_id, type_) in enumerate(events, start=1):
        # One at a time: the worker handles deliveries concurrently, and the listings'
        # newest-first order (asserted below) is the order the log wrote them in.
        await publish(broker, event_id, type_)
        await inspector.wait_count(settings.amqp.dead_letter_queue, count)
    await consumer.stop(5)
    yield calls


async def command(settings: Settings, action: str, query: EventQuery | None = None) -> str:
    out = io.StringIO()
    assert await run_command(settings, action, query or EventQuery(), out) == 0
    return out.getvalue()


async def test_list_and_show_come_from_the_log_and_take_nothing_away(
    settings: Settings, dead_letters: dict[str, int], inspector: Inspector
) -> None:
    listed = await command(settings, "list")
    assert "3 dead letter(s) on this page" in listed and "more:" not in listed
    assert [line.split()[0] for line in listed.splitlines()[:3]] == ["d-3", "d-2", "d-1"]
    assert "error=RejectEvent: not today" in listed
    shown = await command(settings, "show", EventQuery(type="uipath.job.*"))
    assert "2 dead letter(s) on this page" in shown
    assert '"handler": "picky",' in shown and '"outcome": "dead_letter",' in shown
    assert '"n": "d-1"' in shown
    await inspector.wait_count(settings.amqp.dead_letter_queue, 3)


async def test_filters_and_pages(settings: Settings, dead_letters: dict[str, int]) -> None:
    assert "1 dead letter(s)" in await command(settings, "list", EventQuery(id="d-3"))
    future = (datetime.now(UTC) + timedelta(hours=1)).timestamp()
    assert "0 dead letter(s)" in await command(settings, "list", EventQuery(since=future))
    first = await command(settings, "list", EventQuery(limit=2))
    assert "2 dead letter(s) on this page" in first
    cursor = first.rsplit("more: --cursor ", 1)[1].strip()
    rest = await command(settings, "list", EventQuery(limit=2, cursor=cursor))
    assert rest.splitlines()[0].startswith("d-1  ") and "more:" not in rest


async def test_the_command_line_refuses_a_bad_filter(
    settings: Settings, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert await run_command(settings, "list", EventQuery(cursor="not-ours"), out) == 2
    assert await run_command(settings, "replay", EventQuery(type="a.*.b"), out) == 2
    assert "not a cursor" in capsys.readouterr().err


async def test_a_message_the_broker_dead_lettered_replays_its_handlers(
    settings: Settings, broker: Broker, inspector: Inspector, db: Database
) -> None:
    """The worker rejects a message when it cannot publish its retry copy: the broker
    dead-letters it without our headers; replayed from the queue, it runs the handlers
    its retry copy named, with the broker's death records gone."""
    await seed_dead_letter(db, "b-1")
    headers = {"x-bridge-attempt": 2, "x-bridge-handlers": ["picky"]}  # a retry copy
    await broker.publish(body("b-1", "uipath.job.faulted"), routing_key="uipath.job.faulted",
                         message_id="b-1", timeout_s=5, headers=headers)  # fmt: skip
    channel = await inspector.connection.channel()
    queue = await channel.declare_queue(settings.amqp.queue, passive=True)
    async with asyncio.timeout(10):
        while (message := await queue.get(fail=False)) is None:
            await poll_interval()
    await message.reject(requeue=False)
    await inspector.wait_count(settings.amqp.dead_letter_queue, 1)

    assert "replayed 1 dead letter(s)" in await command(settings, "replay")
    replayed = await inspector.get(settings.amqp.queue)
    assert replayed.headers is not None
    assert list(replayed.headers["x-bridge-handlers"]) == ["picky"]  # type: ignore[arg-type]
    assert "x-death" not in replayed.headers  # a fresh start: its next death is dated anew
    await inspector.wait_count(settings.amqp.dead_letter_queue, 0)
    found = await db.events.get("b-1")
    assert found is not None and found[1][-1].handler == "replayed by the command line"


async def seed_dead_letter(db: Database, event_id: str) -> None:
    at = time.time()
    head = LoggedEvent(event_id, "uipath.job.faulted", "test", None, None, at, at,
                       "dead_lettered", 2, "RejectEvent: no")  # fmt: skip
    await db.events.record(head, [Attempt("picky", 2, "dead_letter", "no", at, 1.0)], b"{}")


async def test_replay_goes_through_the_normal_path_with_the_original_id(
    settings: Settings,
    broker: Broker,
    dead_letters: dict[str, int],
    inspector: Inspector,
    store: Database,
) -> None:
    out = await command(settings, "replay", EventQuery(type="uipath.#"))
    assert "replayed 2 dead letter(s)" in out
    await inspector.wait_count(settings.amqp.dead_letter_queue, 1)  # d-3 stays

    seen: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    registry = Registry()

    @registry.handler("#", name="steady")
    async def steady(event: CloudEvent, context: Context) -> None:
        await seen.put(("steady", event.id))

    @registry.handler("#", name="picky")
    async def picky(event: CloudEvent, context: Context) -> None:
        await seen.put(("picky", event.id))

    consumer = Consumer(settings, broker, registry, database=store)
    await consumer.start()
    async with asyncio.timeout(10):
        replayed = {await seen.get(), await seen.get()}
    await inspector.wait_count(settings.amqp.queue, 0)
    await consumer.stop(5)
    assert replayed == {("picky", "d-1"), ("picky", "d-2")}  # only the handler that failed
    assert seen.empty()


async def test_a_replay_of_something_already_done_has_no_second_effect(
    settings: Settings, broker: Broker, inspector: Inspector, database: Database
) -> None:
    effects: list[str] = []
    registry = Registry()

    @registry.handler("#", name="effect", idempotent=True)
    async def effect(event: CloudEvent, context: Context) -> None:
        effects.append(event.id)

    consumer = Consumer(settings, broker, registry, database=database)
    await consumer.start()
    for _ in range(3):  # the same event id three times: a sender retry, a replay...
        await publish(broker, "once-1", "leanix.factsheet.updated")
    await inspector.wait_count(settings.amqp.queue, 0)
    await consumer.stop(5)
    assert effects == ["once-1"]
    assert await database.handled.is_handled("once-1", "effect")


async def test_readers_of_the_dead_letters_take_turns_and_each_sees_them_all(
    settings: Settings, broker: Broker, dead_letters: dict[str, int]
) -> None:
    """A replay holds the letters until it releases them: a second replay in the same
    process waits for that instead of seeing none."""
    first, second = DeadLetterQueue(broker), DeadLetterQueue(broker)
    try:
        ids = ["d-1", "d-2", "d-3"]
        assert len(await first.read(ids)) == 3
        waiting = asyncio.create_task(second.read(ids))
        lock = readers_lock(broker)
        await eventually(lambda: lock._waiters, what="the second reader waits its turn")
        await first.release()
        async with asyncio.timeout(10):
            assert len(await waiting) == 3
    finally:
        await first.release()
        await second.release()
