"""Event ids of any length, through the real worker on a real PostgreSQL (issue 9, item 10).

`handled.event_id` was VARCHAR(100): a longer id failed every claim, so the event was
retried through its whole schedule and dead-lettered. CloudEvents allows any non-empty
string; these events are published straight to the bus (the receiver makes 36-character
ids, but a replay or another publisher need not) and go the whole way: the automation
handler claims the event, the sequence guard records it, a run is started under it and
completed by a completion event whose id is as long, the outcome is written back, and
the event log keeps both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa

from service.automation.starter import correlation_id
from service.cloudevent import CloudEvent, encode
from service.settings import Settings
from service.simulators.lab import Lab
from service.store import Database
from service.store.ids import event_key
from tests.conftest import AMQP_URL, postgres_database
from tests.e2e.conftest import Service, lab, make_service, service_factory
from tests.waiting import eventually

pytestmark = pytest.mark.e2e
__all__ = ["lab", "make_service", "service_factory"]  # the e2e fixtures, used here

SOMEONE = "9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"  # a LeanIX user who is not us
Start = Callable[..., Awaitable[Service]]


@pytest.fixture
async def postgres_url(prefix: str) -> AsyncIterator[str]:
    async with postgres_database(prefix) as url:
        yield url


async def publish(settings: Settings, event: CloudEvent) -> None:
    """Publish a CloudEvent straight to the events exchange, as another publisher could."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.amqp.exchange)
        message = aio_pika.Message(
            encode(event), content_type="application/cloudevents+json", message_id="long-id"
        )
        await exchange.publish(message, routing_key=event.type)


async def row(database: Database, query: str, **values: Any) -> Any:
    async with database.engine.connect() as connection:
        return (await connection.execute(sa.text(query), values)).first()


@pytest.mark.parametrize("length", [300, 100 * 1024], ids=["300-characters", "100-KiB"])
async def test_an_event_with_a_long_id_is_handled_start_to_write_back(
    postgres_url: str, lab: Lab, service_factory: Start, length: int
) -> None:
    rule = lab.rule("workato")
    lab.workato.faults.drop_callbacks = True  # the completion comes from us, below
    service = await service_factory([rule], store={"url": postgres_url})
    sheet = lab.leanix.add_fact_sheet("Application", "Long Ids")
    start_id, done_id = "s" * length, "d" * length
    change = CloudEvent(
        id=start_id, source="leanix:lab", type="leanix.factsheet.updated", subject=sheet,
        time="2026-11-23T10:00:00Z", data=lab.leanix.event(sheet, user_id=SOMEONE),
    )  # fmt: skip
    await publish(service.settings, change)
    await eventually(lambda: lab.workato.calls, what="the run started")

    cid = correlation_id(start_id, rule["name"])
    completed = CloudEvent(
        id=done_id, source="workato", type="workato.job.completed", subject=cid,
        time="2026-11-23T10:01:00Z", data={"status": "completed", "correlationId": cid},
    )  # fmt: skip
    await publish(service.settings, completed)
    await eventually(lambda: _written_back(lab, sheet), what="the outcome written back")
    await publish(service.settings, change)  # a second copy of each: handled once
    await publish(service.settings, completed)

    database = Database(postgres_url)
    try:

        async def both_logged_twice() -> bool:
            found = [await database.events.get(i) for i in (start_id, done_id)]
            return all(f is not None and len(f[1]) >= 2 for f in found)

        await eventually(both_logged_twice, what="both events and their copies logged")
        for event_id in (start_id, done_id):
            logged = await database.events.get(event_id)
            assert logged is not None
            assert logged[0].status == "handled"
            assert {a.outcome for a in logged[1]} == {"ok", "skipped"}  # the copy: done before
        run = await row(database, "SELECT event_id, completed_by, status FROM runs")
        assert tuple(run) == (event_key(start_id), event_key(done_id), "written_back")
        sequence = await row(database, "SELECT event_id FROM fact_sheet_sequence")
        assert sequence[0] == event_key(start_id)
        claims = await row(database, "SELECT count(*) FROM handled WHERE handled_at IS NOT NULL")
        assert claims[0] == 2
    finally:
        await database.close()
    assert len(lab.workato.calls) == 1
    assert len(lab.leanix.comments[sheet]) == 1


def _written_back(lab: Lab, sheet: str) -> bool:
    tags = {tag["name"] for tag in lab.leanix.fact_sheets[sheet].tags}
    return "workato-done" in tags and bool(lab.leanix.comments.get(sheet))
