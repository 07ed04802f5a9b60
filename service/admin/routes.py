"""The admin API's routes: one list, `ROUTES`, that the router and the document share.

Each `Route` names its method, path, scope and handler (api.py), and what it takes and
answers (bodies.py). `add_routes` mounts them; openapi_admin.py documents the same list,
so the router and the OpenAPI document cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from service.admin import api, bodies
from service.admin.auth import Handler, require
from service.automation.rules import VENDORS
from service.store import eventlog, runs

STRING = {"type": "string"}


@dataclass(frozen=True)
class Param:
    """A query parameter: its name, what it means and its JSON Schema."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: STRING)
    repeated: bool = False  # `id=a&id=b`


@dataclass(frozen=True)
class Route:
    """One admin operation. Its path parameters are the `{names}` in `path`."""

    method: str
    path: str
    scope: str
    handler: Handler
    summary: str
    answer: type  # the 200 body: a class in bodies.py
    answered: str  # what the 200 body is, in words
    query: tuple[Param, ...] = ()
    body: type | None = None  # the request body: a class in bodies.py
    refusals: Mapping[int, str] = field(default_factory=dict)  # status -> when, in words

    @property
    def name(self) -> str:
        return self.handler.__name__


def add_routes(app: web.Application) -> None:
    """Mount the admin API on `app` (which holds DATABASE, SETTINGS and BROKER)."""
    for route in ROUTES:
        app.router.add_route(route.method, route.path, require(route.scope, route.handler))


def _enum(values: Iterable[str]) -> Mapping[str, Any]:
    return {"enum": list(values)}


def _bad_query(names: str) -> dict[int, str]:
    return {400: f"A query parameter is invalid: {names}."}


TIME = bodies.TIME_TEXT
UNAVAILABLE = {503: "The store or the message broker is unavailable: retry later."}
LIMIT_SCHEMA = {"type": "integer", "minimum": 1, "maximum": api.MAX_LIMIT, "default": 50}
LIMIT = Param("limit", "Page size.", LIMIT_SCHEMA)
EVENT_TYPE = (
    "An event type, or a prefix ending in `.*` or `.#` (`leanix.factsheet.*`): the only "
    "wildcards (`%` and `_` match themselves; `*` or `#` elsewhere is refused)."
)
ROUTES = (
    Route(
        "GET",
        "/api/v1/events",
        "events:read",
        api.list_events,
        "Search the event log, newest first",
        bodies.EventPage,
        "A page of events.",
        query=(
            Param("type", EVENT_TYPE),
            Param("subject", "The subject: a Fact Sheet id, a job or run id."),
            Param("status", "The event's latest status.", _enum(eventlog.STATUSES)),
            Param("since", f"Received at or after. {TIME}"),
            Param("until", f"Received before. {TIME}"),
            LIMIT,
            Param("cursor", "The `next_cursor` of the previous page."),
        ),
        refusals=_bad_query("type, limit, since, until or cursor"),
    ),
    Route(
        "GET",
        "/api/v1/events/{id}",
        "events:read",
        api.get_event,
        "One event with every handling attempt",
        bodies.EventDetail,
        "The event.",
        refusals={404: "No event with this id in the event log."},
    ),
    Route(
        "GET",
        "/api/v1/runs",
        "runs:read",
        api.list_runs,
        "Runs by Fact Sheet, vendor and status, newest first",
        bodies.RunPage,
        "A page of runs.",
        query=(
            Param("fact_sheet_id", "The Fact Sheet the run is about."),
            Param("vendor", "The platform.", _enum(VENDORS)),
            Param("status", "The run's status.", _enum(runs.STATUSES)),
            LIMIT,
            Param(
                "cursor",
                "The `next_cursor` of the previous page.",
                {**STRING, "pattern": f"^{api.RUN_CURSOR}$"},
            ),
        ),
        refusals=_bad_query("limit or cursor"),
    ),
    Route(
        "GET",
        "/api/v1/dead-letters",
        "events:read",
        api.list_dead_letters,
        "What the worker gave up on (taking nothing away)",
        bodies.DeadLetterList,
        f"Up to {api.MAX_LIMIT} dead letters.",
        query=(
            Param("id", "An event id; repeat it for several (`id=a&id=b`).", repeated=True),
            Param("type", "An AMQP topic pattern of event types (`uipath.job.*`)."),
            Param("since", f"Dead-lettered at or after. {TIME}"),
        ),
        refusals={**_bad_query("since"), **UNAVAILABLE},
    ),
    Route(
        "POST",
        "/api/v1/dead-letters/replay",
        "events:replay",
        api.replay_dead_letters,
        "Publish matching dead letters back with their original ids",
        bodies.ReplayResult,
        "The ids replayed, in order.",
        body=bodies.ReplayRequest,
        refusals={
            400: "The body is not a JSON object, a filter is invalid, or no filter was given "
            'without `"all": true`.',
            413: "The body is over `http.max_body_bytes`.",
            **UNAVAILABLE,
        },
    ),
    Route(
        "GET",
        "/api/v1/rules",
        "rules:read",
        api.list_rules,
        "The rules in force",
        bodies.RuleList,
        "The rules.",
        refusals={400: "The configured rules are invalid."},
    ),
    Route(
        "GET",
        "/api/v1/status",
        "status:read",
        api.status,
        "Broker, queue depths, runs in flight and event counts",
        bodies.Status,
        "The service's status.",
    ),
)
