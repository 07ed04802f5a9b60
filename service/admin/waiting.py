"""The starts that wait, as `GET /api/v1/runs?state=waiting` lists them: in the order
they will start (due time, then arrival), paged by a cursor that is the last one's due
time and id, so that starts made meanwhile never shift a page."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from service.admin import bodies
from service.automation.rules import Rule
from service.errors import MalformedEvent
from service.store import Database
from service.store.waiting import STATES, Waiting

CURSOR = r"[0-9]{1,17}(\.[0-9]{1,17})?(e[+-][0-9]{1,3})?-[0-9]{1,18}"  # due time and id


async def page(
    database: Database, rules: tuple[Rule, ...], query: Mapping[str, str], limit: int
) -> bodies.RunPage:
    """One page of the waiting starts that match `query`'s filters."""
    status = query.get("status") or None
    if status is not None and status not in STATES:
        raise MalformedEvent(f"status of a waiting start must be one of {', '.join(STATES)}")
    found = await database.waiting.page(
        states=(status,) if status else STATES,
        rules=_rules(rules, query.get("rule") or None, query.get("vendor") or None),
        fact_sheet_id=query.get("fact_sheet_id") or None,
        after=_after(query.get("cursor")),
        limit=limit + 1,
    )
    shown = found[:limit]
    cursor = f"{shown[-1].due_at!r}-{shown[-1].id}" if len(found) > limit and shown else None
    vendors = {rule.name: rule.vendor for rule in rules}
    now = time.time()
    return bodies.RunPage([_item(w, vendors.get(w.rule), now) for w in shown], cursor)


def _rules(rules: tuple[Rule, ...], rule: str | None, vendor: str | None) -> tuple[str, ...] | None:
    """The rules whose starts to list; None for every one (even a rule gone from the
    configuration)."""
    if vendor is None:
        return None if rule is None else (rule,)
    return tuple(r.name for r in rules if r.vendor == vendor and rule in (None, r.name))


def _after(cursor: str | None) -> tuple[float, int] | None:
    if cursor is None:
        return None
    if not re.fullmatch(CURSOR, cursor):
        raise MalformedEvent("cursor must be the next_cursor of a previous page")
    due_at, waiting_id = cursor.rsplit("-", 1)
    return float(due_at), int(waiting_id)


def _item(waiting: Waiting, vendor: str | None, now: float) -> bodies.WaitingStart:
    return bodies.WaitingStart(
        id=waiting.id, state=waiting.status(now), rule=waiting.rule, vendor=vendor,
        target_key=waiting.target_key, fact_sheet_id=waiting.fact_sheet_id,
        event_id=waiting.event_id, events=waiting.events, first_seen=waiting.first_seen,
        due_at=waiting.due_at, retry_at=waiting.retry_at(now), attempts=waiting.attempts,
        last_error=waiting.last_error,
    )  # fmt: skip
