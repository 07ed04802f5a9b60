"""The admin API's routes: one list, `ROUTES`, that the router and the document share.

Each `Route` names its method, path, scope and handler (api.py); the handler's docstring is
its summary and its return type (a class in bodies.py) its answer. `add_routes` mounts the
list; openapi_admin.py documents the same list, so the router and the document cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from aiohttp import web

from service.admin import api, bodies
from service.admin import waiting as admin_waiting
from service.admin.auth import Handler, require
from service.automation.rules import VENDORS
from service.store import eventlog, runs, waiting

Answering = Callable[[web.Request], Awaitable[object]]  # returns a body from bodies.py
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
    handler: Answering
    query: tuple[Param, ...] = ()
    refusals: Mapping[int, str] = field(default_factory=dict)  # status -> when, in words
    body: type | None = None  # the request body: a class in bodies.py

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or "").strip().removesuffix(".")

    @property
    def answer(self) -> type:
        answer: type = get_type_hints(self.handler)["return"]
        return answer


def add_routes(app: web.Application) -> None:
    """Mount the admin API on `app` (which holds DATABASE, SETTINGS and BROKER)."""
    for route in ROUTES:
        app.router.add_route(route.method, route.path, require(route.scope, _json(route.handler)))


def _json(handler: Answering) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return api.json(await handler(request))

    return answer


def _enum(values: Iterable[str]) -> Mapping[str, Any]:
    return {"enum": list(values)}


def _bad_query(names: str) -> dict[int, str]:
    return {400: f"A query parameter is invalid: {names}."}


TIME = bodies.TIME_TEXT
UNAVAILABLE = {503: "The store or the message broker is unavailable: retry later."}
LIMIT_SCHEMA = {"type": "integer", "minimum": 1, "maximum": bodies.MAX_LIMIT, "default": 50}
PREVIOUS_PAGE = "The `next_cursor` of the previous page."
EVENTS_QUERY = (
    Param("id", "An event id."),
    Param("fact_sheet", "A Fact Sheet id, or the start of its name (as in the event's data)."),
    Param("run_id", "A vendor's run id: the event that started that run."),
    Param(
        "type",
        "An event type, or a prefix ending in `.*` or `.#` (`leanix.factsheet.*`): the only "
        "wildcards (`%` and `_` match themselves; `*` or `#` elsewhere is refused).",
    ),
    Param("subject", "The subject: a Fact Sheet id, a job or run id."),
    Param("status", "The event's latest status.", _enum(eventlog.STATUSES)),
    Param("since", f"Received at or after. {TIME}"),
    Param("until", f"Received before. {TIME}"),
    Param("limit", "Page size.", LIMIT_SCHEMA),
    Param("cursor", PREVIOUS_PAGE),
)
RUNS_QUERY = (
    Param(
        "state",
        "`started`: the runs, newest first. `waiting`: the starts that wait (rules with "
        "`start.concurrency` or `coalesce`), in the order they will start.",
        {"enum": list(api.RUN_STATES), "default": "started"},
    ),
    Param("fact_sheet_id", "The Fact Sheet the run is about."),
    Param("vendor", "The platform.", _enum(VENDORS)),
    Param("rule", "The rule that started it (or will)."),
    Param(
        "status",
        f"A run's status ({', '.join(runs.STATUSES)}); with `state=waiting` a waiting "
        f"start's ({', '.join(waiting.STATES)}).",
        _enum((*runs.STATUSES, *(s for s in waiting.STATES if s not in runs.STATUSES))),
    ),
    Param("limit", "Page size.", LIMIT_SCHEMA),
    Param(
        "cursor",
        PREVIOUS_PAGE,
        {**STRING, "pattern": f"^({api.RUN_CURSOR}|{admin_waiting.CURSOR})$"},
    ),
)
DEAD_LETTERS_QUERY = tuple(p for p in EVENTS_QUERY if p.name != "status")
EVENTS_400 = _bad_query("type, limit, since, until or cursor")
EVENT_404 = {404: "No event with this id in the event log."}
RUNS_400 = _bad_query(
    "state, vendor, status (one the state has not), limit or cursor (of the other state)"
)
DEAD_LETTERS_REFUSED = EVENTS_400
EVENTS_REPLAY_REFUSED = {
    400: "The body is not a JSON object, a filter is invalid, more than "
    f"{bodies.MAX_REPLAY} events match, or neither ids nor a filter was given without "
    '`"all": true`.',
    413: "The body is over `http.max_body_bytes`.",
    **UNAVAILABLE,
}
RULES_400 = {400: "The configured rules are invalid."}
ROUTES = (
    Route("GET", "/api/v1/events", "events:read", api.list_events, EVENTS_QUERY, EVENTS_400),
    Route(
        "POST",
        "/api/v1/events/replay",
        "events:replay",
        api.replay_events,
        refusals=EVENTS_REPLAY_REFUSED,
        body=bodies.EventReplayRequest,
    ),
    Route("GET", "/api/v1/events/{id}", "events:read", api.get_event, refusals=EVENT_404),
    Route("GET", "/api/v1/runs", "runs:read", api.list_runs, RUNS_QUERY, RUNS_400),
    Route(
        "GET",
        "/api/v1/dead-letters",
        "events:read",
        api.list_dead_letters,
        DEAD_LETTERS_QUERY,
        DEAD_LETTERS_REFUSED,
    ),
    Route(
        "POST",
        "/api/v1/dead-letters/replay",
        "events:replay",
        api.replay_dead_letters,
        refusals=EVENTS_REPLAY_REFUSED,
        body=bodies.DeadLetterReplayRequest,
    ),
    Route("GET", "/api/v1/rules", "rules:read", api.list_rules, refusals=RULES_400),
    Route("GET", "/api/v1/status", "status:read", api.status),
    Route("GET", "/api/v1/stats", "status:read", api.stats),
)
