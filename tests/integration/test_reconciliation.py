"""Reconciliation on a schedule (service/reconciliation.py) over a real store's leases:
two replicas, one reconciles; a dead holder is replaced; shutdown stops it at once and
hands the lease over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service import reconciliation
from service.automation.rules import load as load_rules
from service.reconciliation import LEASE, Schedule
from service.resources import Resources
from service.settings import ReconcileSettings, Settings
from service.store import Database
from tests.waiting import eventually

pytestmark = pytest.mark.integration

INTERVAL_S = 0.2
MARGIN_S = 60.0


class Replica:
    """One replica's schedule, recording each `since` it reconciled from."""

    def __init__(self, db: Database, work: Callable[[], Any] | None = None) -> None:
        self.since: list[datetime] = []
        self.work = work
        self.schedule = Schedule(INTERVAL_S, MARGIN_S, db.leases, self.reconcile)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.schedule.run(self.stop))

    async def reconcile(self, since: datetime) -> int:
        self.since.append(since)
        if self.work is not None:
            await self.work()
        return 0

    async def halt(self) -> None:
        self.stop.set()
        async with asyncio.timeout(2):  # promptly, even mid-run
            await self.task


@pytest.fixture
async def replicas(db: Database) -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for replica in started:
        replica.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replica.task


async def test_two_replicas_one_reconciles_and_a_dead_ones_lease_is_taken_over(
    db: Database, replicas: list[Replica]
) -> None:
    one, two = Replica(db), Replica(db)
    replicas += [one, two]
    await eventually(lambda: len(one.since) + len(two.since) >= 3, 10, "three runs")
    holder, other = (one, two) if one.since else (two, one)
    assert not other.since  # only the holder reconciled
    before = datetime.now(UTC) - timedelta(seconds=INTERVAL_S + MARGIN_S)
    assert abs((holder.since[-1] - before).total_seconds()) < 2  # interval + margin back

    holder.task.cancel()  # killed: its lease lapses (two intervals), the other takes over
    with contextlib.suppress(asyncio.CancelledError):
        await holder.task
    await eventually(lambda: other.since, 5, "the other replica took over")
    await other.halt()
    assert await db.leases.holder(LEASE) is None  # handed over at shutdown


async def test_shutdown_stops_a_run_under_way(db: Database, replicas: list[Replica]) -> None:
    forever = asyncio.Event()
    replica = Replica(db, forever.wait)  # a run that would never end
    replicas.append(replica)
    await eventually(lambda: replica.since, 5, "a run started")
    await replica.halt()
    assert replica.task.done() and await db.leases.holder(LEASE) is None


def resources(settings: Settings, db: Database, rules: tuple[dict[str, Any], ...]) -> Resources:
    return Resources(
        settings,
        broker=None,  # type: ignore[arg-type]  # not used to build the schedule
        database=db,
        session=None,  # type: ignore[arg-type]
        leanix_clients={"default": object()},  # type: ignore[dict-item]
        rules=load_rules(rules),
    )


async def test_a_schedule_only_when_an_interval_is_set_and_a_rule_listens(
    settings: Settings, db: Database
) -> None:
    listening = {
        "name": "r",
        "on": ["leanix.factsheet.*"],
        "start": {"vendor": "uipath", "target": {"release_key": "k"}},
    }
    deaf = {**listening, "on": ["leanix.factsheet.updated"]}
    every = replace(settings, reconcile=ReconcileSettings(interval="15m", margin="5m"))
    assert reconciliation.schedule(resources(settings, db, (listening,))) is None  # off
    assert reconciliation.schedule(resources(every, db, (deaf,))) is None
    planned = reconciliation.schedule(resources(every, db, (listening,)))
    assert planned is not None and (planned.interval_s, planned.margin_s) == (900.0, 300.0)
