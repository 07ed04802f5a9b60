"""The admin API, `/api/v1`: JSON, paginated, every route behind a scope.

The handlers. routes.py lists them with their method, path and scope (the router and the
OpenAPI document are both built from that list); each answer is a class in bodies.py.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
import orjson
from aiohttp import web

from service.admin import bodies, dead_letters, replay, waiting
from service.admin.auth import DATABASE, KEY
from service.admin.bodies import MAX_LIMIT, MAX_REPLAY
from service.admin.factsheet import fact_sheet
from service.automation import rules as rules_module
from service.bus.broker import Broker
from service.deadletters import parse_since, readers_lock
from service.errors import BrokerUnavailable, ConfigError, MalformedEvent, NotFound, Unavailable
from service.settings import Settings
from service.store import Database
from service.store import runs as runs_store
from service.store.eventlog import EventQuery, LoggedEvent

SETTINGS = web.AppKey("admin_settings", Settings)
BROKER_ERRORS = (
    aio_pika.exceptions.AMQPError,
    aiormq.exceptions.AMQPError,
    ConnectionError,
    RuntimeError,  # aio-pika: "Connection was not opened" while reconnecting
)
BROKER = web.AppKey("admin_broker", Broker)
RUN_CURSOR = "[0-9]{1,18}"  # a run's id
RUN_STATES = ("started", "waiting")  # GET /api/v1/runs?state=: runs, or the starts that wait
VERSION = "0.1.0"
REPLAY_FILTERS = ("type", "fact_sheet", "run_id", "status", "since", "until")


def json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc, default=_default),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _default(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit", "50")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise MalformedEvent(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _time(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return parse_since(raw).timestamp()
    except (ValueError, OverflowError):
        raise MalformedEvent(
            f"{name} must be an ISO 8601 time or an age like 30m, 2h, 1d"
        ) from None


def _event_query(q: Mapping[str, str], limit: int) -> EventQuery:
    return EventQuery(
        id=q.get("id") or None,
        fact_sheet=q.get("fact_sheet") or None,
        run_id=q.get("run_id") or None,
        type=q.get("type") or None,
        subject=q.get("subject") or None,
        status=q.get("status") or None,
        since=_time(q, "since"),
        until=_time(q, "until"),
        limit=limit,
        cursor=q.get("cursor") or None,
    )


async def list_events(request: web.Request) -> bodies.EventPage:
    """Search the event log, newest first."""
    query = _event_query(request.query, _limit(request.query))
    try:
        found, cursor = await request.app[DATABASE].events.search(query)
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from None
    return bodies.EventPage(found, cursor)


async def get_event(request: web.Request) -> bodies.EventDetail:
    """One event with every handling attempt."""
    found = await request.app[DATABASE].events.get(request.match_info["id"])
    if found is None:
        raise NotFound(f"no event {request.match_info['id']!r} in the event log")
    event, attempts = found
    return bodies.EventDetail(
        **vars(event),
        attempt_log=attempts,
        runs=await request.app[DATABASE].runs.for_event(event.id),
        fact_sheet=fact_sheet(event, request.app[SETTINGS].clients.leanix),
    )


async def list_runs(request: web.Request) -> bodies.RunPage:
    """Runs by Fact Sheet, vendor, rule and status, newest first; or the starts that wait."""
    q = request.query
    state = q.get("state") or "started"
    if state not in RUN_STATES:
        raise MalformedEvent(f"state must be one of {', '.join(RUN_STATES)}")
    if (q.get("vendor") or None) not in (None, *rules_module.VENDORS):
        raise MalformedEvent(f"vendor must be one of {', '.join(rules_module.VENDORS)}")
    limit = _limit(q)
    if state == "waiting":
        return await waiting.page(request.app[DATABASE], _rules(request), q, limit)
    return await _started_runs(request.app[DATABASE], q, limit)


async def _started_runs(database: Database, q: Mapping[str, str], limit: int) -> bodies.RunPage:
    before = q.get("cursor")
    if before is not None and not re.fullmatch(RUN_CURSOR, before):
        raise MalformedEvent("cursor must be the next_cursor of a previous page")
    if (q.get("status") or None) not in (None, *runs_store.STATUSES):
        raise MalformedEvent(f"status of a run must be one of {', '.join(runs_store.STATUSES)}")
    runs = await database.runs.search(
        fact_sheet_id=q.get("fact_sheet_id") or None,
        vendor=q.get("vendor") or None,
        status=q.get("status") or None,
        rule=q.get("rule") or None,
        limit=limit + 1,
        before_id=int(before) if before else None,
    )
    page = runs[:limit]
    cursor = str(page[-1].id) if len(runs) > limit and page else None
    return bodies.RunPage(page, cursor)


async def list_dead_letters(request: web.Request) -> bodies.DeadLetterPage:
    """What the worker dead-lettered, from the event log, newest first."""
    query = _event_query(request.query, _limit(request.query))
    try:
        found, cursor = await request.app[DATABASE].events.search(dead_letters.only(query))
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from None
    return bodies.DeadLetterPage(found, cursor)


async def replay_dead_letters(request: web.Request) -> bodies.EventReplayResult:
    """Publish the chosen dead letters back (or only count them)."""
    doc = await _json_object(request)
    doc.pop("status", None)  # not one of this route's filters
    chosen = await _chosen(request.app[DATABASE], doc, only=dead_letters.STATUS)
    return await _replay(request, chosen, doc)


async def replay_events(request: web.Request) -> bodies.EventReplayResult:
    """Publish the chosen events back to the work queue (or only count them)."""
    doc = await _json_object(request)
    return await _replay(request, await _chosen(request.app[DATABASE], doc), doc)


async def _replay(
    request: web.Request, chosen: list[LoggedEvent], doc: dict[str, Any]
) -> bodies.EventReplayResult:
    if doc.get("dry_run") is True:
        return bodies.EventReplayResult(len(chosen), [], [])
    by = request[KEY].name
    try:
        done, refused = await replay.replay(_ready_broker(request), request.app[DATABASE],
                                            chosen, by)  # fmt: skip
    except (*BROKER_ERRORS, BrokerUnavailable) as exc:
        raise Unavailable(f"the message broker failed: {exc}; retry later") from None
    return bodies.EventReplayResult(len(chosen), done, refused)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise MalformedEvent("the body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise MalformedEvent("the body must be a JSON object")
    return doc


async def _chosen(
    database: Database, doc: dict[str, Any], only: str | None = None
) -> list[LoggedEvent]:
    """The events `doc` names (ids, or filters), of status `only` if given."""
    ids = doc.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise MalformedEvent("ids must be a list of event ids")
    filters = {k: v for k, v in doc.items() if k in REPLAY_FILTERS and v}
    if not all(isinstance(v, str) for v in filters.values()):
        raise MalformedEvent(f"the filters ({', '.join(REPLAY_FILTERS)}) must be strings")
    if ids:
        found = await replay.by_ids(database.events, ids[:MAX_REPLAY])
        return [e for e in found if only is None or e.status == only]
    if not filters and doc.get("all") is not True:
        raise MalformedEvent('give ids or a filter, or "all": true to replay every event')
    if only is not None:
        filters["status"] = only
    try:
        return await replay.matching(database.events, _event_query(filters, MAX_LIMIT),
                                     MAX_REPLAY)  # fmt: skip
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from None


async def stats(request: web.Request) -> bodies.Stats:
    """Events per minute, runs per vendor, latency (last 24 h) and queue depths."""
    database = request.app[DATABASE]
    since = time.time() - 86400
    return bodies.Stats(
        since=since,
        events_per_minute=await database.events.per_minute(since),
        runs_by_vendor=await database.runs.outcomes(since),
        latency=await database.events.latency(since),
        queues=await _depths(request.app[BROKER]),
    )


async def list_rules(request: web.Request) -> bodies.RuleList:
    """The rules in force."""
    return bodies.RuleList(_rules(request))


def _rules(request: web.Request) -> tuple[rules_module.Rule, ...]:
    try:
        return rules_module.load(request.app[SETTINGS].rules)
    except ConfigError as exc:
        raise MalformedEvent(str(exc)) from None


async def status(request: web.Request) -> bodies.Status:
    """Broker, queue depths, runs in flight and event counts."""
    broker = request.app[BROKER]
    database = request.app[DATABASE]
    day_ago = time.time() - 86400
    return bodies.Status(
        version=VERSION,
        broker=bodies.BrokerStatus(broker.ready, await _depths(broker)),
        runs_in_flight=await database.runs.in_flight(),
        runs_waiting=await database.waiting.counts(),
        events_last_24h=await database.events.counts(since=day_ago),
    )


async def _depths(broker: Broker) -> dict[str, int]:
    try:
        return await _read_depths(broker)
    except BROKER_ERRORS:
        return {}


async def _read_depths(broker: Broker) -> dict[str, int]:
    if not broker.ready or broker.connection is None:
        return {}
    channel = await broker.connection.channel()
    try:
        found = {}
        for name in (broker.settings.queue, broker.settings.dead_letter_queue):
            async with readers_lock(broker):  # not while a replay holds the dead letters
                declared = await channel.declare_queue(name, passive=True)
            found[name] = declared.declaration_result.message_count or 0
        return found
    finally:
        await channel.close()


def _ready_broker(request: web.Request) -> Broker:
    broker = request.app[BROKER]
    if not broker.ready:
        raise Unavailable("not connected to the message broker; retry later")
    return broker
