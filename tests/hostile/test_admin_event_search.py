"""Event-type search in the admin API: `.*` / `.#` at the end is the only wildcard. LIKE's
`%` and `_` in a query match only themselves (before, `type=%.*` matched every event)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.bus.broker import Broker
from service.settings import Settings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.web import create_app

TYPES = ("leanix.factsheet.updated", "uipath.job.completed", "a_b.x", "axb.x", "a_b",
         "axb", "%.odd", "a/b.x", "a/bb.x", "a//b.x")  # fmt: skip


@pytest.fixture
async def admin(
    database: Database, make_settings: Callable[..., Settings]
) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, str]]]:
    """The admin API over the event log holding one event of each of TYPES."""
    for n, kind in enumerate(TYPES):
        at = 1000.0 + n
        head = LoggedEvent(f"e-{n}", kind, "test", None, None, at, at, "handled", 1, None)
        await database.events.record(head, [Attempt("h", 1, "ok", None, at, 1.0)], b"{}")
    _, key = await database.keys.create("ops", ["events:read"], [])
    settings = make_settings()
    app = create_app(settings, Broker(settings.amqp), database)  # the broker is not needed
    async with TestClient(TestServer(app)) as client:
        yield client, {"Authorization": f"Bearer {key}"}


async def search(admin: tuple[TestClient[Any, Any], dict[str, str]], type_: str) -> Any:
    client, headers = admin
    async with client.get("/api/v1/events", params={"type": type_}, headers=headers) as response:
        body = orjson.loads(await response.read())
        if response.status != 200:
            return response.status, body["detail"]
        return sorted(event["type"] for event in body["items"])


FOUND = {
    "%.*": ["%.odd"],  # was: every event
    "%": [],
    "a_b.*": ["a_b.x"],  # not axb.x
    "a_b": ["a_b"],  # not axb
    "_.*": [],
    "a/b.*": ["a/b.x"],  # SQLAlchemy's escape character, itself escaped
    "a//b.*": ["a//b.x"],
    "uipath.*": ["uipath.job.completed"],
    "leanix.#": ["leanix.factsheet.updated"],
    "leanix.factsheet.updated": ["leanix.factsheet.updated"],
}


async def test_only_a_trailing_wildcard_is_one(
    admin: tuple[TestClient[Any, Any], dict[str, str]],
) -> None:
    found = {pattern: await search(admin, pattern) for pattern in FOUND}
    assert found == FOUND


async def test_a_wildcard_elsewhere_is_refused_saying_where_it_works(
    admin: tuple[TestClient[Any, Any], dict[str, str]],
) -> None:
    for pattern in ("*", "#", "uipath.*.completed", "*.x", "a.#.b"):
        status, detail = await search(admin, pattern)
        assert status == 400, pattern
        assert "prefix ending in .*" in detail
