"""Sequence-guard poisoning, through the receiver and the worker (issue 9, item 9).

A LeanIX event whose transactionSequenceNumber was 2^63-1 blocked every later event of
its type for that Fact Sheet; 2^64-1 raised OverflowError and was dead-lettered. Here
such webhooks go over a real socket to the receiver, through RabbitMQ to the worker, on
SQLite and on PostgreSQL: each still starts its run, none becomes the mark, and LeanIX's
own order still holds afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa

from service.simulators.lab import LEANIX_WEBHOOK_AUTH, Lab
from service.store import Database
from tests.conftest import AMQP_URL, postgres_database
from tests.e2e.conftest import Service, drained, lab, make_service, service_factory
from tests.waiting import eventually

pytestmark = pytest.mark.e2e
__all__ = ["lab", "make_service", "service_factory"]  # the e2e fixtures, used here

SOMEONE = "9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"  # a LeanIX user who is not us
Start = Callable[..., Awaitable[Service]]


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(
    request: pytest.FixtureRequest, prefix: str, tmp_path: Path
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sequence.sqlite3'}"
        return
    async with postgres_database(prefix) as url:
        yield url


async def send(lab: Lab, sheet: str, sequence: Any) -> None:
    """LeanIX sends an update of `sheet` numbered `sequence`."""
    event = lab.leanix.event(sheet, user_id=SOMEONE)
    event["transactionSequenceNumber"] = sequence
    url = f"{lab.service_url}/webhooks/leanix"
    assert await lab.leanix._post(url, LEANIX_WEBHOOK_AUTH, event) == 202


async def mark(url: str) -> int | None:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            query = sa.text("SELECT sequence FROM fact_sheet_sequence")
            return (await connection.execute(query)).scalar()
    finally:
        await database.close()


async def dead_letters(service: Service) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(service.settings.amqp.dead_letter_queue, passive=True)
        return queue.declaration_result.message_count or 0


async def test_absurd_sequence_numbers_neither_fail_nor_block_a_fact_sheet(
    store_url: str, lab: Lab, service_factory: Start
) -> None:
    service = await service_factory([lab.rule("workato")], store={"url": store_url})
    sheet = lab.leanix.add_fact_sheet("Application", "Sequence Poison")

    def runs() -> int:
        return len(lab.workato.calls)

    for n, absurd in enumerate([2**64 - 1, 2**63, -5, 2**63 - 1], start=1):
        await send(lab, sheet, absurd)
        await eventually(lambda n=n: runs() == n, what=f"run {n}, for {absurd}")
    assert await mark(store_url) == 2**63 - 1  # in range: recorded, but it blocks nothing:

    await send(lab, sheet, 75086)
    await eventually(lambda: runs() == 5, what="the run of a real event after 2^63-1")
    assert await mark(store_url) == 75086
    await send(lab, sheet, 75085)  # a real late event is still dropped
    await eventually(lambda: drained(service.settings), what="the late event handled")
    await send(lab, sheet, 75087)
    await eventually(lambda: runs() == 6, what="the run of the next real event")

    assert runs() == 6  # every event but the late one started its run
    assert await dead_letters(service) == 0
    assert await mark(store_url) == 75087
