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
from service.store.eventlog import Attempt, LoggedEvent
from service.store.runs import Run

MAX_LIMIT = 500  # items in one answer
TIME_TEXT = "An ISO 8601 time (UTC when it has no offset), or an age like `30m`, `2h`, `1d`."
Count = Annotated[int, Field(ge=0)]
Cursor = Annotated[str | None, Field(description="null on the last page")]


@dataclass(frozen=True)
class EventPage:
    """A page of events."""

    items: list[LoggedEvent]
    next_cursor: Cursor


@dataclass(frozen=True, kw_only=True)
class EventDetail(LoggedEvent):
    """The event, with every handling attempt."""

    attempt_log: list[Attempt]


@dataclass(frozen=True)
class RunPage:
    """A page of runs."""

    items: list[Run]
    next_cursor: Cursor


@dataclass(frozen=True)
class DeadLetter:
    id: str
    type: str
    attempts: int | None
    dead_lettered_at: str | None
    failed_handlers: list[str]
    error: str | None


@dataclass(frozen=True)
class DeadLetterList:
    """The dead letters (the queue keeps them)."""

    items: Annotated[list[DeadLetter], Field(max_length=MAX_LIMIT)]


@dataclass(frozen=True)
class ReplayRequest:
    """Give `ids`, `id`, `type` or `since`, or `"all": true` to replay every dead letter."""

    ids: list[str] = field(default_factory=list)
    id: str = ""
    type: Annotated[str, Field(description="An AMQP topic pattern of event types.")] = ""
    since: Annotated[str, Field(description=f"Dead-lettered since. {TIME_TEXT}")] = ""
    all: bool = False


@dataclass(frozen=True)
class ReplayResult:
    """The ids replayed, in order."""

    replayed: list[str]


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
    events_last_24h: dict[str, Count]
