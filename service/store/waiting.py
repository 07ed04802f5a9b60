"""Waiting starts: runs to start once their target has a free slot or their rule's
coalescing window closed, kept in the store so that no worker's memory holds them.

    add / coalesce --> row (due_at) --claim (a free slot)--> claimed --done--> deleted
                        ^                                     |
                        +-- later: held until its retry time <-+ failed for now
                        +-- release, or the claim lapses <-----+ not tried

A target's starts go strictly in order, by due time then arrival: a claim takes the due
starts of its target that fit the rest of its limit (its rules' runs `running`, or
`starting` within `starting_s`, and the rows claimed and not yet done count against it),
and never one behind a start that failed for now and waits for its retry: that start
holds its target (`held`) until it is made, or dropped (`done`) as refused for good.
Claims of one target are taken one at a time across every worker: on PostgreSQL under a
transaction-scoped advisory lock on the target, on SQLite under the database's write
lock, which the claim's first statement takes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.store.ids import event_key
from service.store.schema import runs, waiting_starts

_CLAIMABLE = sa.or_(
    waiting_starts.c.claimed_until.is_(None), waiting_starts.c.claimed_until < sa.bindparam("now")
)
_HELD = sa.and_(  # failed for now, waiting for its retry time
    waiting_starts.c.claimed_by.is_(None), waiting_starts.c.claimed_until >= sa.bindparam("now")
)
_ORDER = (waiting_starts.c.due_at, waiting_starts.c.id)
STATES = ("coalescing", "waiting", "retrying", "starting")


@dataclass(frozen=True)
class Waiting:
    id: int
    correlation_id: str
    rule: str
    target_key: str
    event_id: str
    event: str
    first_seen: float
    due_at: float
    events: int = 1
    attempts: int = 0
    fact_sheet_id: str | None = None
    coalesce_key: str | None = None
    claimed_by: str | None = None
    claimed_until: float | None = None
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Waiting:
        data = dict(row._mapping)
        data.pop("updated_at", None)
        return cls(**data)

    def status(self, now: float) -> str:
        """`coalescing` until its window closes, `starting` while claimed, `retrying` after
        a start that failed for now until its retry time (holding its target), else
        `waiting` (for a slot, or for the starts before it)."""
        if (self.claimed_until or 0.0) >= now:
            return "starting" if self.claimed_by is not None else "retrying"
        return "coalescing" if self.due_at > now else "waiting"

    def retry_at(self, now: float) -> float | None:
        """When a start that failed for now is tried again; None if it is not held."""
        held = self.claimed_by is None and (self.claimed_until or 0.0) >= now
        return self.claimed_until if held else None


@dataclass(frozen=True)
class Slots:
    """A target's capacity: the rules that start it (their open runs take its slots) and
    how many runs may be in flight at once (None: no limit)."""

    target_key: str
    rules: tuple[str, ...]
    limit: int | None


def lock_id(target_key: str) -> int:
    """The advisory lock of a target on PostgreSQL (a signed 64-bit integer)."""
    digest = hashlib.blake2b(f"waiting:{target_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class WaitingStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, *, correlation_id: str, rule: str, target_key: str, event_id: str,
                  event: str, fact_sheet_id: str | None, due_at: float) -> bool:  # fmt: skip
        """Queue a start; False if this start (its correlation id) is queued already."""
        now = time.time()
        row = dict(
            correlation_id=correlation_id, rule=rule, target_key=target_key, event=event,
            event_id=event_key(event_id), fact_sheet_id=fact_sheet_id, events=1, attempts=0,
            first_seen=now, due_at=due_at, updated_at=now,
        )  # fmt: skip
        try:
            async with self.engine.begin() as connection:
                await connection.execute(waiting_starts.insert().values(**row))
            return True
        except sa.exc.IntegrityError:
            return False

    async def coalesce(self, *, key: str, correlation_id: str, rule: str, target_key: str,
                       event_id: str, event: str, fact_sheet_id: str | None,
                       window_s: float) -> None:  # fmt: skip
        """Queue a start under `key` (rule and Fact Sheet), due `window_s` after the first
        event of the key; a later event replaces the earlier one's, the due time stays."""
        replace = (
            waiting_starts.update()
            .where(waiting_starts.c.coalesce_key == key)
            .values(
                correlation_id=correlation_id, event_id=event_key(event_id), event=event,
                events=waiting_starts.c.events + 1, updated_at=sa.bindparam("stamp"),
            )
        )  # fmt: skip
        for _ in range(3):  # an insert racing ours: replace its event instead
            try:
                async with self.engine.begin() as connection:
                    moved = await connection.execute(replace, {"stamp": time.time()})
                if moved.rowcount:
                    return
                now = time.time()
                async with self.engine.begin() as connection:
                    await connection.execute(
                        waiting_starts.insert().values(
                            correlation_id=correlation_id, rule=rule, target_key=target_key,
                            coalesce_key=key, event_id=event_key(event_id), event=event,
                            fact_sheet_id=fact_sheet_id, events=1, attempts=0, first_seen=now,
                            due_at=now + window_s, updated_at=now,
                        )
                    )  # fmt: skip
                return
            except sa.exc.IntegrityError:
                continue  # the key was taken meanwhile, or this very event is queued already

    async def claim(self, slots: Slots, holder: str, lease_s: float,
                    starting_s: float) -> list[Waiting]:  # fmt: skip
        """Take the due starts of a target that fit its free slots, in order, and none
        behind a start that waits for its retry."""
        now = time.time()
        async with self.engine.begin() as connection:
            await _lock(connection, slots.target_key)
            free = await self._free(connection, slots, now, starting_s)
            if free is not None and free <= 0:
                return []
            query = (
                sa.select(waiting_starts.c.id)
                .where(waiting_starts.c.target_key == slots.target_key,
                       waiting_starts.c.rule.in_(slots.rules),
                       waiting_starts.c.due_at <= now, _CLAIMABLE)
                .order_by(*_ORDER)
                .with_for_update(skip_locked=True)
            )  # fmt: skip
            head = await _held_head(connection, slots, now)
            if head is not None:
                query = query.where(_before(head))
            if free is not None:
                query = query.limit(free)
            ids = [row[0] for row in await connection.execute(query, {"now": now})]
            if not ids:
                return []
            await connection.execute(
                waiting_starts.update()
                .where(waiting_starts.c.id.in_(ids))
                .values(claimed_by=holder, claimed_until=now + lease_s, coalesce_key=None,
                        updated_at=now)
            )  # fmt: skip
            found = await connection.execute(
                sa.select(waiting_starts).where(waiting_starts.c.id.in_(ids)).order_by(*_ORDER)
            )
            return [Waiting.from_row(row) for row in found]

    async def _free(
        self, connection: AsyncConnection, slots: Slots, now: float, starting_s: float
    ) -> int | None:
        """How many more runs the target may start now; None if it has no limit."""
        if slots.limit is None:
            return None
        in_flight = sa.select(sa.func.count()).where(
            runs.c.rule.in_(slots.rules),
            sa.or_(
                runs.c.status == "running",
                sa.and_(runs.c.status == "starting", runs.c.updated_at >= now - starting_s),
            ),
        )
        claimed = sa.select(sa.func.count()).where(
            waiting_starts.c.target_key == slots.target_key,
            waiting_starts.c.claimed_by.is_not(None),
            waiting_starts.c.claimed_until >= now,
        )
        running = (await connection.execute(in_flight)).scalar_one()
        starting = (await connection.execute(claimed)).scalar_one()
        return slots.limit - running - starting

    async def done(self, waiting_id: int, holder: str) -> None:
        """The start was made (or found made): forget it, if still ours."""
        mine = sa.and_(waiting_starts.c.id == waiting_id, waiting_starts.c.claimed_by == holder)
        async with self.engine.begin() as connection:
            await connection.execute(waiting_starts.delete().where(mine))

    async def later(
        self, waiting_id: int, holder: str, retry_at: float, error: str | None = None
    ) -> None:
        """The start failed for now: nobody takes it before `retry_at`, and it holds its
        target's later starts until then (its due time, its place, is kept)."""
        mine = sa.and_(waiting_starts.c.id == waiting_id, waiting_starts.c.claimed_by == holder)
        statement = (
            waiting_starts.update()
            .where(mine)
            .values(claimed_by=None, claimed_until=retry_at, updated_at=time.time(),
                    attempts=waiting_starts.c.attempts + 1,
                    last_error=error[:500] if error is not None else None)
        )  # fmt: skip
        async with self.engine.begin() as connection:
            await connection.execute(statement)

    async def release(self, waiting_ids: list[int], holder: str) -> None:
        """Give back claimed starts not tried (a start before them failed): anyone may take
        them again, in their place, no attempt counted."""
        mine = sa.and_(waiting_starts.c.id.in_(waiting_ids), waiting_starts.c.claimed_by == holder)
        statement = (
            waiting_starts.update()
            .where(mine)
            .values(claimed_by=None, claimed_until=None, updated_at=time.time())
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement)

    async def behind(self, waiting: Waiting) -> int:
        """How many starts of its target wait behind `waiting`."""
        query = sa.select(sa.func.count()).where(
            waiting_starts.c.target_key == waiting.target_key,
            sa.not_(_before(waiting)),
            waiting_starts.c.id != waiting.id,
        )
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def due_rules(self, now: float) -> list[str]:
        """The rules with starts due and unclaimed now."""
        query = (
            sa.select(waiting_starts.c.rule)
            .where(waiting_starts.c.due_at <= now, _CLAIMABLE)
            .group_by(waiting_starts.c.rule)
        )
        async with self.engine.connect() as connection:
            return [row[0] for row in await connection.execute(query, {"now": now})]

    async def counts(self) -> dict[str, dict[str, int]]:
        """Starts waiting now, per rule, by status (waiting, coalescing, starting)."""
        found: dict[str, dict[str, int]] = {}
        now = time.time()
        for row in await self.search(limit=None):
            per_rule = found.setdefault(row.rule, {})
            status = row.status(now)
            per_rule[status] = per_rule.get(status, 0) + 1
        return found

    async def page(
        self, *, states: tuple[str, ...] = STATES, rules: tuple[str, ...] | None = None,
        fact_sheet_id: str | None = None, after: tuple[float, int] | None = None,
        limit: int = 100,
    ) -> list[Waiting]:  # fmt: skip
        """Waiting starts in the order they will start, from after `after` (a start's due
        time and id), in one of `states` and, if given, of one of `rules`."""
        now = time.time()
        query = (
            sa.select(waiting_starts)
            .where(sa.or_(*(_in_state(state, now) for state in states)))
            .order_by(*_ORDER)
            .limit(limit)
        )
        if rules is not None:
            query = query.where(waiting_starts.c.rule.in_(rules))
        if fact_sheet_id is not None:
            query = query.where(waiting_starts.c.fact_sheet_id == fact_sheet_id)
        if after is not None:
            query = query.where(sa.not_(_before_or_at(*after)))
        async with self.engine.connect() as connection:
            return [Waiting.from_row(row) for row in await connection.execute(query)]

    async def search(
        self, *, rule: str | None = None, fact_sheet_id: str | None = None, limit: int | None = 100
    ) -> list[Waiting]:
        """Waiting starts in the order they will start (by due time, then arrival)."""
        query = sa.select(waiting_starts).order_by(*_ORDER)
        if rule is not None:
            query = query.where(waiting_starts.c.rule == rule)
        if fact_sheet_id is not None:
            query = query.where(waiting_starts.c.fact_sheet_id == fact_sheet_id)
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as connection:
            return [Waiting.from_row(row) for row in await connection.execute(query)]


def _in_state(state: str, now: float) -> sa.ColumnElement[bool]:
    """Rows whose `Waiting.status(now)` is `state`, as SQL."""
    live = waiting_starts.c.claimed_until >= now
    if state == "starting":
        return sa.and_(waiting_starts.c.claimed_by.is_not(None), live)
    if state == "retrying":
        return sa.and_(waiting_starts.c.claimed_by.is_(None), live)
    idle = sa.or_(waiting_starts.c.claimed_until.is_(None), waiting_starts.c.claimed_until < now)
    if state == "coalescing":
        return sa.and_(idle, waiting_starts.c.due_at > now)
    return sa.and_(idle, waiting_starts.c.due_at <= now)


def _before_or_at(due_at: float, waiting_id: int) -> sa.ColumnElement[bool]:
    return sa.or_(
        waiting_starts.c.due_at < due_at,
        sa.and_(waiting_starts.c.due_at == due_at, waiting_starts.c.id <= waiting_id),
    )


async def _held_head(connection: AsyncConnection, slots: Slots, now: float) -> Any:
    """The first start of the target that waits for its retry (due time and id), if any."""
    query = (
        sa.select(*_ORDER)
        .where(waiting_starts.c.target_key == slots.target_key,
               waiting_starts.c.rule.in_(slots.rules), _HELD)
        .order_by(*_ORDER)
        .limit(1)
    )  # fmt: skip
    return (await connection.execute(query, {"now": now})).first()


def _before(head: Any) -> sa.ColumnElement[bool]:
    """Rows ahead of `head` (anything with `due_at` and `id`) in its target's order."""
    return sa.or_(
        waiting_starts.c.due_at < head.due_at,
        sa.and_(waiting_starts.c.due_at == head.due_at, waiting_starts.c.id < head.id),
    )


async def _lock(connection: AsyncConnection, target_key: str) -> None:
    """Hold the target's claims until this transaction ends (see the module's note)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id(target_key))))
        return
    # SQLite: a write statement, even one that changes nothing, takes the write lock now
    # (waiting out busy_timeout), before the counts below are read.
    nothing = waiting_starts.update().where(waiting_starts.c.id == -1).values(attempts=0)
    await connection.execute(nothing)
