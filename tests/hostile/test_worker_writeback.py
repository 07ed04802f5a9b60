"""Concurrent write-backs to one Fact Sheet (issue 9, item 8).

After 3 immediate tries a stale `rev` surfaced as GraphQLErrors, which counted as
permanent: in a lab run 6 of 16 runs stayed `completed`, never written back. Here 16
runs on four platforms complete on one Fact Sheet at once, through the whole service
against the LeanIX simulator (which refuses a write at a stale rev as LeanIX does); all
16 must be written back, once each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aio_pika
import pytest
import sqlalchemy as sa

from service.simulators.lab import VENDORS, Lab
from service.store import Database
from tests.conftest import AMQP_URL
from tests.e2e.conftest import Service, lab, make_service, service_factory
from tests.waiting import eventually

pytestmark = pytest.mark.e2e
__all__ = ["lab", "make_service", "service_factory"]  # the e2e fixtures, used here

RUNS = 16
Start = Callable[..., Awaitable[Service]]


def rule(lab: Lab, n: int) -> dict[str, object]:
    """Rule n: a run on one of the four platforms, written back as a field, a tag and a comment."""
    vendor = VENDORS[n % len(VENDORS)]
    start = lab.rule(vendor)["start"]
    if vendor == "leapwork":  # a Leapwork schedule runs once at a time: one schedule each
        start["target"] = {"schedule_id": lab.leapwork.add_schedule(f"Schedule {n}")}
    return lab.rule(
        vendor,
        start=start,
        name=f"run-{n:02}",
        write_back={
            "comment": "run {{ run.id }} {{ run.outcome }}",
            "on_success": {"tags": [f"done-{n:02}"], "fields": {"alias": f"run-{n:02}"}},
            "on_failure": {"tags": [f"failed-{n:02}"]},
        },
    )


async def counted(url: str, query: str) -> dict[str, int]:
    """{key: count} from a `SELECT key, count(*) ... GROUP BY key` on the service's store."""
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            return {key: count for key, count in await connection.execute(sa.text(query))}
    finally:
        await database.close()


async def statuses(url: str) -> dict[str, int]:
    return await counted(url, "SELECT status, count(*) FROM runs GROUP BY status")


async def dead_letters(service: Service) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(service.settings.amqp.dead_letter_queue, passive=True)
        return queue.declaration_result.message_count or 0


async def test_sixteen_runs_completing_on_one_fact_sheet_at_once_are_all_written_back(
    lab: Lab, service_factory: Start
) -> None:
    for simulator in (lab.leapwork, lab.robocorp, lab.uipath, lab.workato):
        simulator.run_duration_s = 1.0  # every run starts before the first one completes
    # a schedule with room: each write-back whose 5 writes all collided takes one retry
    schedule = {"retry_delays_s": [0.2, 0.5, 1.0, 2.0, 4.0]}
    service = await service_factory([rule(lab, n) for n in range(RUNS)], worker=schedule)
    sheet = lab.leanix.add_fact_sheet("Application", "Contended")

    assert await lab.change(sheet) == 202

    def tags() -> set[str]:
        return {tag["name"] for tag in lab.leanix.fact_sheets[sheet].tags}

    async def all_written_back() -> bool:
        return await statuses(service.settings.store.url) == {"written_back": RUNS}

    await eventually(all_written_back, timeout_s=40, what=f"{RUNS} runs written back")
    assert tags() == {f"done-{n:02}" for n in range(RUNS)}
    assert len(lab.leanix.comments[sheet]) == RUNS  # each once
    assert await dead_letters(service) == 0
    url = service.settings.store.url
    completions = "WHERE handler LIKE 'automation.complete%' GROUP BY outcome"
    outcomes = await counted(url, f"SELECT outcome, count(*) FROM attempts {completions}")
    conflicts, retried = lab.leanix.requests["stale_rev"], outcomes.get("retry", 0)
    print(
        f"\n{RUNS} runs completing on one Fact Sheet at once: {RUNS} of {RUNS} written back,"
        f" 0 dead-lettered; {conflicts} stale-rev writes re-read and re-applied by the client,"
        f" {retried} write-backs retried on the event's schedule"
    )
    assert conflicts > 0  # they did collide: the test proves something
