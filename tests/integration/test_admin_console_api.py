"""What the admin API gained for the console: find, an event's whole story, charts, and
replaying any event or a filtered set, each replay noted with the key's name."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.bus.broker import Broker
from service.runs import RunState
from service.settings import Settings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.web import create_app
from tests.integration.conftest import Inspector
from tests.integration.test_admin import get, key

pytestmark = pytest.mark.integration

FACT_SHEET = {"id": "fs-1", "name": "Payroll", "displayName": "Payroll (HR)",
              "type": "Application"}  # fmt: skip


@pytest.fixture
async def admin(
    settings: Settings, broker: Broker, db: Database
) -> AsyncIterator[TestClient[Any, Any]]:
    leanix = {**vars(settings.clients.leanix), "workspace_name": "acme"}
    clients = {**vars(settings.clients), "leanix": type(settings.clients.leanix)(**leanix)}
    tree = Settings(**{**vars(settings), "clients": type(settings.clients)(**clients)})
    async with TestClient(TestServer(create_app(tree, broker, db))) as client:
        yield client


async def seed(db: Database, event_id: str, status: str, data: Any, at: float) -> None:
    head = LoggedEvent(
        event_id,
        "leanix.factsheet.updated",
        "leanix:ws",
        "fs-1",
        None,
        at,
        at + 0.5,
        status,
        1,
        "RejectEvent: no" if status != "handled" else None,
    )
    tries = [Attempt("h", 1, "ok" if status == "handled" else "dead_letter", None, at, 2.0)]
    await db.events.record(head, tries, orjson.dumps(data) if data is not None else None)


async def post(client: TestClient[Any, Any], path: str, doc: Any, headers: dict[str, str]
               ) -> tuple[int, Any]:  # fmt: skip
    async with client.post(path, json=doc, headers=headers) as response:
        return response.status, await response.json()


async def test_an_event_with_its_runs_and_fact_sheet(admin: TestClient[Any, Any], db: Database
                                                     ) -> None:  # fmt: skip
    await seed(db, "e-1", "handled", {"factSheet": FACT_SHEET}, time.time())
    await db.runs.begin(correlation_id="c-1", vendor="uipath", rule="r", event_id="e-1",
                        fact_sheet_id="fs-1", target={}, inputs={})  # fmt: skip
    await db.runs.started("c-1", RunState("uipath", "job-9", "running", url="https://x/j/9"), 0.0)
    reader = await key(db, "events:read")
    _, doc = await get(admin, "/api/v1/events/e-1", reader)
    assert doc["fact_sheet"] == {
        "id": "fs-1",
        "name": "Payroll (HR)",
        "type": "Application",
        "url": "https://app.leanix.net/acme/factsheet/Application/fs-1",
    }
    assert [(r["run_id"], r["run_url"]) for r in doc["runs"]] == [("job-9", "https://x/j/9")]
    for query in ("id=e-1", "fact_sheet=Payroll", "fact_sheet=fs-1", "run_id=job-9"):
        _, page = await get(admin, f"/api/v1/events?{query}", reader)
        assert [e["id"] for e in page["items"]] == ["e-1"], query
    _, none = await get(admin, "/api/v1/events?run_id=job-10", reader)
    assert none["items"] == []


async def test_stats_for_the_charts(
    admin: TestClient[Any, Any], db: Database, inspector: Inspector
) -> None:
    now = time.time()
    await seed(db, "e-1", "handled", {}, now - 10)
    await seed(db, "e-2", "dead_lettered", {}, now - 5)
    await db.runs.begin(correlation_id="c-1", vendor="uipath", rule="r", event_id="e-1",
                        fact_sheet_id="fs-1", target={}, inputs={})  # fmt: skip
    assert (await get(admin, "/api/v1/stats", await key(db, "events:read")))[0] == 403
    _, doc = await get(admin, "/api/v1/stats", await key(db, "status:read"))
    assert sorted((m["status"], m["count"]) for m in doc["events_per_minute"]) in (
        [("dead_lettered", 1), ("handled", 1)],
    )
    assert doc["runs_by_vendor"] == {"uipath": {"starting": 1}}
    assert doc["latency"] == {"count": 1, "p50_s": 0.5, "p99_s": 0.5}
    assert doc["queues"][inspector.settings.amqp.queue] == 0


async def test_replay_counts_first_then_replays_and_notes_the_key(
    admin: TestClient[Any, Any], db: Database, broker: Broker, inspector: Inspector
) -> None:
    amqp = inspector.settings.amqp
    now = time.time()
    await seed(db, "e-handled", "handled", {"factSheet": FACT_SHEET}, now - 30)
    await seed(db, "e-big", "dead_lettered", None, now - 20)  # its data was too large to log
    await seed(db, "e-dead", "dead_lettered", {"x": 1}, now - 10)
    body = orjson.dumps({"specversion": "1.0", "id": "e-dead", "source": "t",
                         "type": "leanix.factsheet.updated", "data": {"x": 1}})  # fmt: skip
    await broker.publish(body, routing_key="leanix.factsheet.updated", message_id="e-dead",
                         timeout_s=5, exchange=amqp.dead_letter_exchange)  # fmt: skip
    await inspector.wait_count(amqp.dead_letter_queue, 1)
    reader, replayer = await key(db, "events:read"), await key(db, "events:replay")
    assert (await post(admin, "/api/v1/events/replay", {"all": True}, reader))[0] == 403
    status, refused = await post(admin, "/api/v1/events/replay", {}, replayer)
    assert status == 400 and '"all": true' in refused["detail"]
    assert (await post(admin, "/api/v1/events/replay", {"type": "a*b"}, replayer))[0] == 400

    dead = {"status": "dead_lettered", "dry_run": True}
    _, counted = await post(admin, "/api/v1/events/replay", dead, replayer)
    assert counted == {"matched": 2, "replayed": [], "not_replayed": []}
    _, done = await post(admin, "/api/v1/events/replay", {"status": "dead_lettered"}, replayer)
    assert done == {"matched": 2, "replayed": ["e-dead"], "not_replayed": ["e-big"]}
    await inspector.wait_count(amqp.queue, 1)
    assert await inspector.count(amqp.dead_letter_queue) == 0

    _, again = await post(admin, "/api/v1/events/replay", {"ids": ["e-handled"]}, replayer)
    assert again == {"matched": 1, "replayed": ["e-handled"], "not_replayed": []}
    await inspector.wait_count(amqp.queue, 2)
    _, doc = await get(admin, "/api/v1/events/e-handled", reader)
    assert doc["status"] == "replayed"
    assert doc["attempt_log"][-1]["handler"] == "replayed by ci"
    assert doc["attempt_log"][-1]["outcome"] == "replayed"
