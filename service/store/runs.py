"""Runs: every automation run the service started, from intent to write-back.

    starting --vendor accepted--> running --completion won--> completed --> written_back
        (a crash here: the next delivery of the event finds the row and starts again)

A run is recorded as `starting` *before* the vendor is called, keyed by a correlation id
derived from (event, rule), so a redelivered event finds its run instead of starting a
second one. Completion is a conditional update: whichever of callback and poller comes
first wins it; the other sees it is done.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.runs import RunState
from service.store.ids import event_key
from service.store.schema import fitted, runs

STATUSES = ("starting", "running", "completed", "written_back")
OPEN = ("starting", "running")


@dataclass(frozen=True)
class Run:
    id: int
    correlation_id: str
    vendor: str
    rule: str
    event_id: str
    status: str
    started_at: float
    run_id: str | None = None
    fact_sheet_id: str | None = None
    target: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    vendor_state: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)
    detail: str | None = None
    run_url: str | None = None
    completed_by: str | None = None
    completed_at: float | None = None
    written_back_at: float | None = None
    next_poll_at: float | None = None
    poll_count: int = 0
    workspace: str | None = None  # the LeanIX workspaceId it writes back to

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Run:
        data = dict(row._mapping)
        data.pop("updated_at", None)
        for key in ("target", "inputs", "outputs"):
            data[key] = orjson.loads(data[key]) if data[key] else {}
        return cls(**data)


def _json(value: Mapping[str, Any]) -> str:
    return orjson.dumps(value, default=str).decode()


class RunStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def begin(
        self,
        *,
        correlation_id: str,
        vendor: str,
        rule: str,
        event_id: str,
        fact_sheet_id: str | None,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        workspace: str | None = None,
    ) -> tuple[Run, bool]:
        """Record the intent to start a run: (the run, True if it is new)."""
        now, event_id = time.time(), event_key(event_id)
        row = dict(
            correlation_id=correlation_id, vendor=vendor, rule=rule, event_id=event_id,
            fact_sheet_id=fact_sheet_id, target=_json(target), inputs=_json(inputs),
            status="starting", started_at=now, updated_at=now, poll_count=0, workspace=workspace,
        )  # fmt: skip
        try:
            async with self.engine.begin() as connection:
                await connection.execute(runs.insert().values(**fitted(runs, row)))
            created = True
        except sa.exc.IntegrityError:
            created = False
        existing = await self.by_correlation(correlation_id)
        assert existing is not None
        return existing, created

    async def take_over(self, run: Run, lease_s: float) -> bool:
        """Claim a run left `starting` for longer than `lease_s` (its starter died)."""
        stale = time.time() - lease_s
        return await self._update(
            sa.and_(runs.c.id == run.id, runs.c.status == "starting", runs.c.updated_at < stale)
        )

    async def release(self, correlation_id: str) -> None:
        """Give up a start that failed, so the event's retry may take it over at once."""
        statement = (
            runs.update()
            .where(runs.c.correlation_id == correlation_id, runs.c.status == "starting")
            .values(updated_at=0.0)
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement)

    async def started(self, correlation_id: str, state: RunState, next_poll_at: float) -> None:
        """The vendor accepted the run: record its id and when to poll it first.

        A callback can complete the run before its start is recorded (a fast run, a slow
        answer): then only the run's id and link are filled in, the run stays completed.
        """
        moved = await self._update(
            sa.and_(runs.c.correlation_id == correlation_id, runs.c.status == "starting"),
            run_id=state.run_id, status="running", vendor_state=state.vendor_state,
            run_url=state.url, next_poll_at=next_poll_at,
        )  # fmt: skip
        if not moved:
            await self._update(
                sa.and_(runs.c.correlation_id == correlation_id, runs.c.run_id.is_(None)),
                run_id=state.run_id, run_url=state.url,
            )  # fmt: skip

    async def claim_poll(self, run: Run, until: float) -> bool:
        """Take a due run for one poll: no other poller polls it before `until`."""
        return await self._update(
            sa.and_(
                runs.c.id == run.id, runs.c.status == "running",
                runs.c.next_poll_at == run.next_poll_at,
            ),
            next_poll_at=until,
        )  # fmt: skip

    async def complete(self, run: Run, state: RunState, event_id: str) -> Run | None:
        """Win the run's completion for `event_id`; None if someone else already did.

        The same event asking again (its own retry) wins again, so a write-back that
        failed half-way can be finished by the retry.
        """
        event_id = event_key(event_id)
        values = dict(
            status="completed", outcome=state.status, vendor_state=state.vendor_state,
            outputs=_json(state.outputs), detail=state.detail, completed_by=event_id,
            completed_at=time.time(), next_poll_at=None,
        )  # fmt: skip
        if state.url:
            values["run_url"] = state.url
        won = await self._update(sa.and_(runs.c.id == run.id, runs.c.status.in_(OPEN)), **values)
        current = await self.by_id(run.id)
        if won or (current and current.status == "completed" and current.completed_by == event_id):
            return current
        return None

    async def written_back(self, run_id: int) -> None:
        await self._update(runs.c.id == run_id, status="written_back", written_back_at=time.time())

    async def polled(self, run_id: int, next_poll_at: float, vendor_state: str) -> None:
        await self._update(
            sa.and_(runs.c.id == run_id, runs.c.status.in_(OPEN)),
            next_poll_at=next_poll_at, vendor_state=vendor_state,
            poll_count=runs.c.poll_count + 1,
        )  # fmt: skip

    async def due(self, now: float, limit: int = 50) -> list[Run]:
        """Running runs whose next poll is due, oldest first."""
        query = (
            sa.select(runs)
            .where(runs.c.status == "running", runs.c.next_poll_at <= now)
            .order_by(runs.c.next_poll_at)
            .limit(limit)
        )
        return await self._select(query)

    async def in_flight(self) -> dict[str, int]:
        """How many runs are started and not finished, per vendor."""
        query = (
            sa.select(runs.c.vendor, sa.func.count())
            .where(runs.c.status.in_(OPEN))
            .group_by(runs.c.vendor)
        )
        async with self.engine.connect() as connection:
            return {vendor: count for vendor, count in await connection.execute(query)}

    async def outcomes(self, since: float) -> dict[str, dict[str, int]]:
        """Runs started since `since`, per vendor, by outcome (or status while open)."""
        result = sa.func.coalesce(runs.c.outcome, runs.c.status).label("result")
        query = (
            sa.select(runs.c.vendor, result, sa.func.count())
            .where(runs.c.started_at >= since)
            .group_by(runs.c.vendor, result)
        )
        found: dict[str, dict[str, int]] = {}
        async with self.engine.connect() as connection:
            for vendor, outcome, count in await connection.execute(query):
                found.setdefault(vendor, {})[outcome] = count
        return found

    async def for_event(self, event_id: str) -> list[Run]:
        """The runs an event started, oldest first."""
        query = sa.select(runs).where(runs.c.event_id == event_key(event_id)).order_by(runs.c.id)
        return await self._select(query)

    async def find(self, vendor: str, run_id: str) -> Run | None:
        """A run by the vendor's run id, or by our correlation id (callbacks carry either)."""
        query = sa.select(runs).where(
            runs.c.vendor == vendor,
            sa.or_(runs.c.run_id == run_id, runs.c.correlation_id == run_id),
        )
        found = await self._select(query)
        return found[0] if found else None

    async def by_correlation(self, correlation_id: str) -> Run | None:
        found = await self._select(sa.select(runs).where(runs.c.correlation_id == correlation_id))
        return found[0] if found else None

    async def by_id(self, run_id: int) -> Run | None:
        found = await self._select(sa.select(runs).where(runs.c.id == run_id))
        return found[0] if found else None

    async def search(
        self,
        *,
        fact_sheet_id: str | None = None,
        vendor: str | None = None,
        status: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
        rule: str | None = None,
    ) -> list[Run]:
        """Runs, newest first, filtered by Fact Sheet, vendor, status and rule."""
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(runs.c.id < before_id)
        for column, value in ((runs.c.fact_sheet_id, fact_sheet_id), (runs.c.vendor, vendor),
                              (runs.c.status, status), (runs.c.rule, rule)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        return await self._select(query)

    async def _update(self, where: Any, **values: Any) -> bool:
        values = fitted(runs, values)
        statement = runs.update().where(where).values(updated_at=time.time(), **values)
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1

    async def _select(self, query: Any) -> list[Run]:
        async with self.engine.connect() as connection:
            return [Run.from_row(row) for row in await connection.execute(query)]
