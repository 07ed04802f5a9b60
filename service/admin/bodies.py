"""The admin API's bodies: what each `/api/v1` route answers, and the replay request.

Each handler in api.py returns one of these frozen dataclasses (their items are the store's
own records: `LoggedEvent`, `Attempt`, `Run`, `Rule`); openapi_schemas.py derives their JSON
Schemas from the same classes, and a class's docstring describes its answer, so an answer
and its documented schema cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from service.automation.rules import Rule
from service.store.eventlog import Attempt, Latency, LoggedEvent, MinuteCount
from service.store.runs import Run

MAX_LIMIT = 500  # items in one answer
MAX_REPLAY = 10_000  # events one replay request may send back
TIME_TEXT = "An ISO 8601 time (UTC when it has no offset), or an age like `30m`, `2h`, `1d`."
Count = Annotated[int, Field(ge=0)]
Cursor = Annotated[str | None, Field(description="null on the last page")]


@dataclass(frozen=True)
class EventPage:
    """A page of events."""

    items: list[LoggedEvent]
    next_cursor: Cursor


@dataclass(frozen=True)
class FactSheet:
    id: str
    name: str | None
    type: str | None
    url: Annotated[
        str | None,
        Field(description="Into LeanIX; null without `clients.leanix.workspace_name`."),
    ]


@dataclass(frozen=True, kw_only=True)
class EventDetail(LoggedEvent):
    """The event, with every handling attempt (replays too), the runs it started and the
    Fact Sheet it is about."""

    attempt_log: list[Attempt]
    runs: list[Run]
    fact_sheet: FactSheet | None


@dataclass(frozen=True)
class WaitingStart:
    """A start that waits (rules with `start.concurrency` or `coalesce`): for its rule's
    coalescing window to close, for a free slot of its target or the starts before it, for
    its retry after it failed for now (holding its target's later starts), or being made
    by a worker."""

    id: int
    state: str
    rule: str
    vendor: Annotated[str | None, Field(description="The rule's; null if it left the rules.")]
    target_key: str
    fact_sheet_id: str | None
    event_id: Annotated[str, Field(description="The latest event's, for a coalesced start.")]
    events: Annotated[int, Field(ge=1, description="How many events it coalesced.")]
    first_seen: float
    due_at: float
    retry_at: float | None
    attempts: Count
    last_error: str | None


@dataclass(frozen=True)
class RunPage:
    """A page of runs: started runs, newest first; or with `state=waiting` the starts
    that wait, in the order they will start."""

    items: list[Run] | list[WaitingStart]
    next_cursor: Cursor


@dataclass(frozen=True)
class DeadLetterPage:
    """A page of dead letters: the events the worker dead-lettered (status
    `dead_lettered` in the event log), newest first."""

    items: list[LoggedEvent]
    next_cursor: Cursor


@dataclass(frozen=True)
class DeadLetterReplayRequest:
    """The dead letters to send back to the work queue: `ids`, or the dead-letter listing's
    filters (`"all": true` for every one). `dry_run` only counts them."""

    ids: Annotated[list[str], Field(max_length=MAX_REPLAY)] = field(default_factory=list)
    type: str = ""
    fact_sheet: str = ""
    run_id: str = ""
    since: Annotated[str, Field(description=f"Received at or after. {TIME_TEXT}")] = ""
    until: Annotated[str, Field(description=f"Received before. {TIME_TEXT}")] = ""
    all: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class EventReplayRequest:
    """The events to send back to the work queue: `ids`, or the event search's filters
    (`"all": true` for every event). `dry_run` only counts them."""

    ids: Annotated[list[str], Field(max_length=MAX_REPLAY)] = field(default_factory=list)
    type: str = ""
    fact_sheet: str = ""
    run_id: str = ""
    status: str = ""
    since: Annotated[str, Field(description=f"Received at or after. {TIME_TEXT}")] = ""
    until: Annotated[str, Field(description=f"Received before. {TIME_TEXT}")] = ""
    all: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class EventReplayResult:
    """How many events matched, the ids sent back (from the dead-letter queue, or rebuilt
    from the event log), and those that could not be (their data was too large to log and
    they are not in the dead-letter queue)."""

    matched: Count
    replayed: list[str]
    not_replayed: list[str]


@dataclass(frozen=True)
class Stats:
    """Charts of the last 24 h: events per minute by status, runs per vendor by outcome
    (or status while open), first seen (the receiver's accept) → handled latency, and the
    queue depths now."""

    since: float
    events_per_minute: list[MinuteCount]
    runs_by_vendor: dict[str, dict[str, Count]]
    latency: Latency
    queues: dict[str, Count]


@dataclass(frozen=True)
class RuleList:
    """The rules."""

    items: tuple[Rule, ...]


@dataclass(frozen=True)
class BrokerStatus:
    ready: bool
    queues: dict[str, Count]


@dataclass(frozen=True)
class Status:
    """The service's status."""

    version: str
    broker: BrokerStatus
    runs_in_flight: dict[str, Count]
    # starts that wait (rules with start.concurrency or coalesce), per rule, by status:
    # waiting (for a slot), coalescing (its window open), retrying (failed for now: holds its
    # target until its retry time), starting (claimed by a worker)
    runs_waiting: dict[str, dict[str, Count]]
    events_last_24h: dict[str, Count]
