"""Event log: every event a worker took, its latest status, and each handling attempt.

Searchable by id, type (exact, or a prefix with `.*`/`.#`: the only wildcards, `%` and `_`
match themselves), subject (the Fact Sheet id), status and time; pruned after a retention
period. Pages are ordered newest first and continue from an opaque cursor.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.connections import autocommit, reconnecting
from service.store.ids import event_key
from service.store.schema import attempts, events, fitted, runs

STATUSES = ("handled", "unhandled", "retrying", "dead_lettered", "replayed")
OUTCOMES = ("ok", "retry", "dead_letter", "skipped", "replayed")  # of one handler's attempt
REPLAYER = "replayed by "  # an attempt's handler when an operator replayed the event
LATENCY_SAMPLE = 20_000  # events the latency percentiles are computed from, newest first


@dataclass(frozen=True)
class Attempt:
    handler: str
    attempt: int
    outcome: str  # one of OUTCOMES
    error: str | None
    at: float
    duration_ms: float


@dataclass(frozen=True)
class LoggedEvent:
    id: str
    type: str
    source: str
    subject: str | None
    time: str | None
    received_at: float
    updated_at: float
    status: str
    attempts: int
    last_error: str | None
    data: Any = None
    # Every CloudEvent context attribute as on the wire (extensions too), uncut: what a
    # replay rebuilds the event from. None for events logged before they were kept.
    attributes: dict[str, Any] | None = None
    accepted_at: float | None = None  # when the receiver accepted it (`receivedat`)

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> LoggedEvent:
        values = dict(row._mapping)
        for name in ("data", "attributes"):
            values[name] = orjson.loads(values[name]) if values.get(name) else None
        return cls(**values)


@dataclass(frozen=True)
class MinuteCount:
    minute: float  # unix seconds at the start of the minute
    status: str
    count: int


@dataclass(frozen=True)
class Latency:
    """Seconds from the receiver accepting an event (its `receivedat`; when it has none,
    a worker first logging it) to a worker having handled it: end to end, retries and
    queueing included."""

    count: int
    p50_s: float | None
    p99_s: float | None


@dataclass(frozen=True)
class EventQuery:
    id: str | None = None
    fact_sheet: str | None = None  # a Fact Sheet id (the subject), or the start of its name
    run_id: str | None = None  # a vendor's run id: the event that started that run
    type: str | None = None
    subject: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(event: LoggedEvent) -> str:
    raw = orjson.dumps([event.received_at, event.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The position a cursor names; ValueError if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        received_at, event_id = orjson.loads(raw)
        return float(received_at), str(event_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValueError("not a cursor from this API") from None


class EventLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.single = autocommit(engine)  # one statement: no BEGIN/COMMIT round trips

    async def record(
        self,
        head: LoggedEvent,
        tries: Sequence[Attempt],
        data_json: bytes | None,
    ) -> None:
        """Create or update the event's row and add its attempts, in one transaction: a
        reader never sees the new status without the attempt that led to it. A status older
        than the stored one (a write that waited for the store) only adds its attempts."""
        row = fitted(events, {
            "id": head.id, "type": head.type, "source": head.source, "subject": head.subject,
            "time": head.time, "received_at": head.received_at, "updated_at": head.updated_at,
            "status": head.status, "attempts": head.attempts, "last_error": head.last_error,
            "data": data_json.decode() if data_json else None,
            "attributes": orjson.dumps(head.attributes).decode() if head.attributes else None,
            "accepted_at": head.accepted_at,
        })  # fmt: skip
        row["id"] = event_key(head.id)  # any length a CloudEvent allows
        added = [{"event_id": row["id"], **vars(t)} for t in tries]
        await reconnecting(lambda: self._record(row, added), "eventlog.record")

    async def _record(self, row: dict[str, Any], added: list[dict[str, Any]]) -> None:
        """The event's row created or updated (an upsert: two workers may race to create
        it) and its attempts added: on PostgreSQL in one statement, elsewhere in one
        transaction."""
        dialect = self.engine.dialect.name
        head = {f"e_{key}": value for key, value in row.items()}
        if dialect == "postgresql" and added:
            tried = {f"a{n}_{k}": v for n, attempt in enumerate(added) for k, v in attempt.items()}
            async with self.single.begin() as connection:
                await connection.execute(_logged(dialect, len(added)), {**head, **tried})
            return
        async with self.engine.begin() as connection:
            await connection.execute(_logged(dialect, 0), head)
            if added:
                await connection.execute(attempts.insert(), added)

    async def get(self, event_id: str) -> tuple[LoggedEvent, list[Attempt]] | None:
        """One event with its attempts, oldest attempt first."""
        event_id = event_key(event_id)
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(events).where(events.c.id == event_id))
            ).first()
            if row is None:
                return None
            # By when each attempt ran: a retry copy handled at once can reach the store before
            # the delivery that made it (that write waits for its ack), so ids alone may
            # invert; attempt numbers restart after a replay (whose note is attempt 0).
            query = (
                sa.select(attempts)
                .where(attempts.c.event_id == event_id)
                .order_by(attempts.c.at, attempts.c.id)
            )
            tries = [_attempt(r) for r in await connection.execute(query)]
        return LoggedEvent.from_row(row), tries

    async def search(self, query: EventQuery) -> tuple[list[LoggedEvent], str | None]:
        """A page of events, newest first, and the cursor of the next page (or None)."""
        statement = sa.select(events).order_by(events.c.received_at.desc(), events.c.id.desc())
        for condition in _conditions(query):
            statement = statement.where(condition)
        async with self.engine.connect() as connection:
            rows = list(await connection.execute(statement.limit(query.limit + 1)))
        found = [LoggedEvent.from_row(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return found, encode_cursor(found[-1]) if more and found else None

    async def replayed(self, event_id: str, by: str, at: float) -> None:
        """Note that the key named `by` sent the event back to the queue: its status becomes
        `replayed` and its attempts start again from 0, so the next delivery's write lands."""
        event_id = event_key(event_id)
        note = Attempt(f"{REPLAYER}{by}", 0, "replayed", None, at, 0.0)
        change = {"status": "replayed", "attempts": 0, "updated_at": at}
        async with self.engine.begin() as connection:
            await connection.execute(events.update().where(events.c.id == event_id).values(change))
            await connection.execute(attempts.insert().values(event_id=event_id, **vars(note)))

    async def per_minute(self, since: float) -> list[MinuteCount]:
        """How many events arrived in each minute since `since`, by their latest status."""
        minute = sa.func.floor(events.c.received_at / 60).label("minute")
        statement = (
            sa.select(minute, events.c.status, sa.func.count())
            .where(events.c.received_at >= since)
            .group_by(minute, events.c.status)
            .order_by(minute)
        )
        async with self.engine.connect() as connection:
            found = await connection.execute(statement)
            return [MinuteCount(float(m) * 60, status, n) for m, status, n in found]

    async def latency(self, since: float) -> Latency:
        """p50 and p99 of accepted → handled, over the newest handled events since `since`."""
        first_seen = sa.func.coalesce(events.c.accepted_at, events.c.received_at)
        took = (events.c.updated_at - first_seen).label("took")
        statement = (
            sa.select(took)
            .where(events.c.status == "handled", events.c.received_at >= since)
            .order_by(events.c.received_at.desc())
            .limit(LATENCY_SAMPLE)
        )
        async with self.engine.connect() as connection:
            # Clocks of the receiver's and the worker's hosts may differ a little.
            sample = sorted(max(0.0, float(t)) for t in (await connection.scalars(statement)))
        if not sample:
            return Latency(0, None, None)
        return Latency(len(sample), _percentile(sample, 0.5), _percentile(sample, 0.99))

    async def prune(self, older_than: float) -> int:
        """Delete events (and their attempts) last updated before `older_than`."""
        old = sa.select(events.c.id).where(events.c.updated_at < older_than)
        async with self.engine.begin() as connection:
            await connection.execute(attempts.delete().where(attempts.c.event_id.in_(old)))
            result = await connection.execute(
                events.delete().where(events.c.updated_at < older_than)
            )
        return int(result.rowcount or 0)

    async def counts(self, since: float | None = None) -> dict[str, int]:
        """How many events are in each status (since a time, if given)."""
        statement = sa.select(events.c.status, sa.func.count()).group_by(events.c.status)
        if since is not None:
            statement = statement.where(events.c.received_at >= since)
        async with self.engine.connect() as connection:
            return {status: count for status, count in await connection.execute(statement)}


@functools.cache
def _logged(dialect: str, tries: int) -> sa.Insert:
    """The event-log write, built once (building it is most of its cost in Python): the
    event's row inserted, or its status updated unless the stored one is newer; with
    `tries` attempts added in the same statement (PostgreSQL: data-modifying CTEs, one
    single-row INSERT each, as SQLAlchemy caches no multi-row VALUES)."""
    upsert = _upsert(dialect)
    if not tries:
        return upsert
    inserts = [attempts.insert().values(_bound(attempts, f"a{n}_")) for n in range(tries)]
    ctes = [upsert.cte("head"), *(i.cte(f"attempt_{n}") for n, i in enumerate(inserts[1:]))]
    return inserts[0].add_cte(*ctes)


def _bound(table: sa.Table, prefix: str) -> dict[str, sa.BindParameter[Any]]:
    columns = [c for c in table.c if not (c.primary_key and c.autoincrement is True)]
    return {c.name: sa.bindparam(f"{prefix}{c.name}", type_=c.type) for c in columns}


def _upsert(dialect: str) -> sa.Insert:
    """Insert the event's row; if it is there, update its status unless the stored one
    is newer: a delivery whose write waited for the store must not overwrite what a later
    delivery of the event wrote meanwhile (an earlier attempt, or the same one updated
    before, is older)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(events).values(_bound(events, "e_"))
    new = statement.excluded
    changes = {k: new[k] for k in ("status", "updated_at", "attempts", "last_error")}
    same = sa.and_(events.c.attempts == new.attempts, events.c.updated_at <= new.updated_at)
    older = sa.or_(events.c.attempts < new.attempts, same)
    return statement.on_conflict_do_update(index_elements=[events.c.id], set_=changes, where=older)


def _attempt(row: sa.Row[Any]) -> Attempt:
    values = dict(row._mapping)
    values.pop("id"), values.pop("event_id")
    return Attempt(**values)


def _type_condition(pattern: str) -> Any:
    """An exact type, or a prefix ending in `.*` or `.#`: the only wildcard. LIKE's own
    `%` and `_` (and its escape character) match only themselves."""
    wildcard = pattern.endswith((".*", ".#"))
    prefix = pattern[:-2] if wildcard else pattern
    if "*" in prefix or "#" in prefix:
        raise ValueError("type: an event type, or a prefix ending in .* (uipath.job.*): "
                         "* and # are wildcards only there")  # fmt: skip
    if not wildcard:
        return events.c.type == pattern
    return events.c.type.startswith(f"{prefix}.", autoescape=True)


def _percentile(ordered: list[float], rank: float) -> float:
    """The nearest-rank percentile of an ordered, non-empty sample."""
    return ordered[min(len(ordered) - 1, max(0, round(rank * len(ordered)) - 1))]


def _fact_sheet_condition(value: str) -> Any:
    """The Fact Sheet's id, or a name starting with `value` in the event's data."""
    named = events.c.data.contains(f'"name":"{value}', autoescape=True)
    return sa.or_(events.c.subject == value, named)


def _identity_conditions(query: EventQuery) -> list[Any]:
    found: list[Any] = []
    if query.id:
        found.append(events.c.id == event_key(query.id))
    if query.fact_sheet:
        found.append(_fact_sheet_condition(query.fact_sheet))
    if query.run_id:
        started = sa.select(runs.c.event_id).where(runs.c.run_id == query.run_id)
        found.append(events.c.id.in_(started))
    return found


def _conditions(query: EventQuery) -> list[Any]:
    found: list[Any] = _identity_conditions(query)
    if query.type:
        found.append(_type_condition(query.type))
    for column, value in ((events.c.subject, query.subject), (events.c.status, query.status)):
        if value:
            found.append(column == value)
    if query.since is not None:
        found.append(events.c.received_at >= query.since)
    if query.until is not None:
        found.append(events.c.received_at < query.until)
    if query.cursor:
        at, event_id = decode_cursor(query.cursor)
        older = sa.or_(events.c.received_at < at,
                       sa.and_(events.c.received_at == at, events.c.id < event_id))  # fmt: skip
        found.append(older)
    return found
