"""Dead letters: the events the worker gave up on, listed from the event log.

    python -m service dead-letters list   [filters] [--limit N] [--cursor C]
    python -m service dead-letters show   [filters] [--limit N] [--cursor C]
    python -m service dead-letters replay [filters]

The worker logs every event it dead-letters (status `dead_lettered`), so the admin API
(`GET /api/v1/dead-letters`) and the command line page through the log with the event
search's filters: nothing is taken off the dead-letter queue to be looked at. A replay
(service/admin/replay.py) republishes each event from the dead-letter queue when it is
still there, else rebuilds it from the log; either way it is noted in the event's history.
"""

from __future__ import annotations

import dataclasses
import sys
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from service.admin import replay
from service.admin.bodies import MAX_REPLAY
from service.bus.broker import Broker
from service.resources import open_database
from service.settings import Settings
from service.store import Database
from service.store.eventlog import EventQuery, LoggedEvent
from service.terminal import visible, visible_json

STATUS = "dead_lettered"
BROKER_WAIT_S = 30.0
CLI_REPLAYER = "the command line"  # the name a replay from the command line is noted with
_SHOW = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def only(query: EventQuery) -> EventQuery:
    """`query` narrowed to the dead letters."""
    return dataclasses.replace(query, status=STATUS)


async def run_command(
    settings: Settings, action: str, query: EventQuery, out: TextIO = sys.stdout
) -> int:
    """The CLI: list, show or replay; returns the exit code."""
    async with AsyncExitStack() as stack:
        database = await open_database(settings, stack)
        if action == "replay":
            return await _replay(settings, database, query, out)
        try:
            found, cursor = await database.events.search(only(query))
        except ValueError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        for event in found:
            out.write(await _render(database, event, full=action == "show") + "\n")
        out.write(f"{len(found)} dead letter(s) on this page\n")
        if cursor is not None:
            out.write(f"more: --cursor {cursor}\n")
        return 0


async def _replay(settings: Settings, database: Database, query: EventQuery, out: TextIO) -> int:
    try:
        chosen = await replay.matching(database.events, only(query), MAX_REPLAY)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    broker = Broker(settings.amqp)
    await broker.start()
    try:
        await broker.wait_ready(BROKER_WAIT_S)
    except TimeoutError:
        await broker.close()
        url = settings.amqp.safe_url
        sys.stderr.write(f"the message broker ({url}) did not answer in {BROKER_WAIT_S:g} s\n")
        return 1
    try:
        done, refused = await replay.replay(broker, database, chosen, CLI_REPLAYER)
    finally:
        await broker.close()
    out.write(f"replayed {len(done)} dead letter(s)\n")
    for event_id in done:
        out.write(f"  {visible(event_id)}\n")
    if refused:
        out.write(f"not replayed (data too large to log, not in the queue): {len(refused)}\n")
        for event_id in refused:
            out.write(f"  {visible(event_id)}\n")
    return 0


async def _render(database: Database, event: LoggedEvent, full: bool) -> str:
    """One line (`list`) or the event in full with its attempts (`show`); event data
    shown, never obeyed."""
    if not full:
        at = visible(_iso(event.updated_at))
        return (
            f"{visible(event.id)}  {visible(event.type)}  attempts={event.attempts}  "
            f"at={at}  error={visible(str(event.last_error))}"
        )
    found = await database.events.get(event.id)
    attempts = found[1] if found is not None else []
    doc: dict[str, Any] = {**vars(event), "attempt_log": [vars(a) for a in attempts]}
    return visible_json(orjson.dumps(doc, option=_SHOW, default=str).decode())


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()
