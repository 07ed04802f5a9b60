"""The admin API: scoped keys, the event log, runs, dead letters, rules, status."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service import logs
from service.admin.keys import run_keys
from service.bus.broker import Broker
from service.runs import RunState
from service.settings import LogSettings, Settings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.store.waiting import Slots
from service.web import create_app
from tests.assertions import assert_problem
from tests.integration.conftest import Inspector

pytestmark = pytest.mark.integration

RULE = {"name": "r1", "on": "leanix.factsheet.*",
        "start": {"vendor": "uipath", "target": {"release_key": "rk"}}}  # fmt: skip


@pytest.fixture
async def admin(
    settings: Settings, broker: Broker, db: Database
) -> AsyncIterator[TestClient[Any, Any]]:
    tree_settings = Settings(**{**vars(settings), "rules": (RULE,)})
    async with TestClient(TestServer(create_app(tree_settings, broker, db))) as client:
        yield client


async def key(db: Database, *scopes: str, allow: list[str] | None = None) -> dict[str, str]:
    _, text = await db.keys.create("ci", list(scopes), allow or [])
    return {"Authorization": f"Bearer {text}"}


async def get(client: TestClient[Any, Any], path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with client.get(path, headers=headers) as response:
        body = await response.read()
        if response.status >= 400:
            assert_problem(response.status, response.content_type, body, response.status)
        return response.status, orjson.loads(body)


async def test_keys_scopes_and_networks(admin: TestClient[Any, Any], db: Database) -> None:
    assert (await get(admin, "/api/v1/status", {}))[0] == 401
    assert (await get(admin, "/api/v1/status", {"Authorization": "Bearer lxb_nope_x"}))[0] == 401
    reader = await key(db, "events:read")
    status, doc = await get(admin, "/api/v1/status", reader)
    assert status == 403 and "status:read" in doc["detail"]
    assert (await get(admin, "/api/v1/events", reader))[0] == 200
    elsewhere = await key(db, "events:read", allow=["10.0.0.0/8"])
    assert (await get(admin, "/api/v1/events", elsewhere))[0] == 403
    local = await key(db, "events:read", allow=["127.0.0.0/8", "::1/128"])
    assert (await get(admin, "/api/v1/events", local))[0] == 200
    revoked_id = (await db.keys.list())[0].id
    assert await db.keys.revoke(revoked_id)
    assert (await get(admin, "/api/v1/events", reader))[0] == 401


async def test_events_are_searchable_and_paginated(
    admin: TestClient[Any, Any], db: Database
) -> None:
    for n in range(5):
        kind = "leanix.factsheet.updated" if n % 2 else "uipath.job.completed"
        at = 1000.0 + n
        head = LoggedEvent(f"e-{n}", kind, "test", f"fs-{n}", None, at, at, "handled", 1, None)
        await db.events.record(head, [Attempt("h", 1, "ok", None, 1000.0 + n, 2.0)], b"{}")
    headers = await key(db, "events:read")
    status, page = await get(admin, "/api/v1/events?limit=2", headers)
    assert status == 200
    assert [e["id"] for e in page["items"]] == ["e-4", "e-3"]
    _, page2 = await get(admin, f"/api/v1/events?limit=2&cursor={page['next_cursor']}", headers)
    assert [e["id"] for e in page2["items"]] == ["e-2", "e-1"]
    _, uipath = await get(admin, "/api/v1/events?type=uipath.*", headers)
    assert [e["id"] for e in uipath["items"]] == ["e-4", "e-2", "e-0"]
    _, by_subject = await get(admin, "/api/v1/events?subject=fs-3", headers)
    assert [e["id"] for e in by_subject["items"]] == ["e-3"]
    _, one = await get(admin, "/api/v1/events/e-3", headers)
    assert one["attempt_log"][0]["outcome"] == "ok"
    assert (await get(admin, "/api/v1/events/none", headers))[0] == 404
    assert (await get(admin, "/api/v1/events?limit=0", headers))[0] == 400
    assert (await get(admin, "/api/v1/events?cursor=zzz", headers))[0] == 400
    assert (await get(admin, "/api/v1/events?since=yesterday", headers))[0] == 400


async def test_runs_rules_and_status(
    admin: TestClient[Any, Any], db: Database, inspector: Inspector
) -> None:
    for n, vendor in enumerate(("uipath", "robocorp", "uipath")):
        await db.runs.begin(correlation_id=f"c-{n}", vendor=vendor, rule="r1", event_id=f"e-{n}",
                            fact_sheet_id="fs-1", target={}, inputs={})  # fmt: skip
        await db.runs.started(f"c-{n}", RunState(vendor, f"run-{n}", "running"), 0.0)
    headers = await key(db, "runs:read", "rules:read", "status:read")
    _, runs = await get(admin, "/api/v1/runs?vendor=uipath&limit=1", headers)
    assert [r["run_id"] for r in runs["items"]] == ["run-2"]
    _, more = await get(admin, f"/api/v1/runs?vendor=uipath&cursor={runs['next_cursor']}", headers)
    assert [r["run_id"] for r in more["items"]] == ["run-0"]
    _, rules = await get(admin, "/api/v1/rules", headers)
    assert rules["items"][0]["name"] == "r1"
    _, status = await get(admin, "/api/v1/status", headers)
    assert status["broker"]["ready"] is True
    assert status["runs_in_flight"] == {"uipath": 2, "robocorp": 1}
    assert status["runs_waiting"] == {}
    await db.waiting.add(correlation_id="c-9", rule="r1", target_key="t", event_id="e-9",
                         event="{}", fact_sheet_id=None, due_at=0.0)  # fmt: skip
    _, status = await get(admin, "/api/v1/status", headers)
    assert status["runs_waiting"] == {"r1": {"waiting": 1}}  # a start waiting for its slot
    assert status["broker"]["queues"][inspector.settings.amqp.queue] == 0


async def seed_waiting(db: Database) -> None:
    """Starts of target `t` in each state, in the order they will start: c-5 being made,
    c-0 failed for now (holding the rest), c-1 and c-2 (a rule gone) waiting, c-3 in its
    coalescing window."""

    def fields(n: int, rule: str = "r1") -> dict[str, Any]:
        return dict(correlation_id=f"c-{n}", rule=rule, target_key="t", event_id=f"e-{n}",
                    event="{}", fact_sheet_id=f"fs-{n}")  # fmt: skip

    store = db.waiting
    for n, rule in ((0, "r1"), (1, "r1"), (2, "gone")):
        await store.add(due_at=1.0 + n, **fields(n, rule))
    await store.coalesce(key="r1/fs-3", window_s=600.0, **fields(3))
    slots = Slots("t", ("r1",), 1)
    (head,) = await store.claim(slots, "w", 60, 60)
    await store.later(head.id, "w", time.time() + 600, "uipath: 503 unavailable")
    await store.add(due_at=0.5, **fields(5))  # ahead of the held one: it goes
    (starting,) = await store.claim(slots, "w", 60, 60)
    assert starting.correlation_id == "c-5"


async def test_waiting_starts_are_listed_filtered_and_paged(
    admin: TestClient[Any, Any], db: Database
) -> None:
    await seed_waiting(db)
    headers = await key(db, "runs:read")

    async def listed(query: str) -> tuple[list[tuple[str, str]], Any]:
        status, page = await get(admin, f"/api/v1/runs?state=waiting&{query}", headers)
        assert status == 200, page
        return [(w["event_id"], w["state"]) for w in page["items"]], page

    everything, page = await listed("")
    assert everything == [("e-5", "starting"), ("e-0", "retrying"), ("e-1", "waiting"),
                          ("e-2", "waiting"), ("e-3", "coalescing")]  # fmt: skip
    held = page["items"][1]
    assert held["last_error"] == "uipath: 503 unavailable" and held["attempts"] == 1
    assert held["retry_at"] > time.time() and held["vendor"] == "uipath"
    assert {k: held[k] for k in ("rule", "target_key", "fact_sheet_id", "events")} == {
        "rule": "r1", "target_key": "t", "fact_sheet_id": "fs-0", "events": 1}  # fmt: skip
    assert page["items"][3]["vendor"] is None and page["items"][2]["retry_at"] is None
    seen, cursor = [], ""
    while cursor is not None:
        part, page = await listed(f"limit=2&cursor={cursor}" if cursor else "limit=2")
        seen.append(part)
        cursor = page["next_cursor"]
    assert seen == [everything[:2], everything[2:4], everything[4:]]
    assert (await listed("status=retrying"))[0] == [("e-0", "retrying")]
    assert (await listed("status=waiting&rule=gone"))[0] == [("e-2", "waiting")]
    assert [e for e, _ in (await listed("vendor=uipath"))[0]] == ["e-5", "e-0", "e-1", "e-3"]
    assert (await listed("fact_sheet_id=fs-3"))[0] == [("e-3", "coalescing")]
    assert (await listed("vendor=robocorp"))[0] == []
    _, runs = await get(admin, "/api/v1/runs", headers)
    assert runs["items"] == []  # started runs only: none


@pytest.mark.parametrize(
    "query",
    ["state=nope", "state=waiting&status=running", "status=coalescing", "vendor=nope",
     "state=waiting&cursor=12", "cursor=1.5-3", "state=waiting&cursor=1.5-"],
)  # fmt: skip
async def test_a_bad_runs_filter_is_a_400(
    admin: TestClient[Any, Any], db: Database, query: str
) -> None:
    headers = await key(db, "runs:read")
    status, problem = await get(admin, f"/api/v1/runs?{query}", headers)  # `get` checks it
    assert status == 400, problem


async def test_dead_letters_list_from_the_log_and_replay_from_the_queue(
    admin: TestClient[Any, Any], db: Database, broker: Broker, inspector: Inspector
) -> None:
    amqp = inspector.settings.amqp
    for n in range(2):
        body = orjson.dumps({"specversion": "1.0", "id": f"d-{n}", "source": "t", "type": "a.b.c"})
        await broker.publish(body, routing_key="a.b.c", message_id=f"d-{n}", timeout_s=5,
                             exchange=amqp.dead_letter_exchange,
                             headers={"x-bridge-error": "RejectEvent: no"})  # fmt: skip
        head = LoggedEvent(f"d-{n}", "a.b.c", "t", None, None, 1000.0 + n, 1000.0 + n,
                           "dead_lettered", 1, "RejectEvent: no")  # fmt: skip
        await db.events.record(head, [], b"{}")
    handled = LoggedEvent("h-0", "a.b.c", "t", None, None, 999.0, 999.0, "handled", 1, None)
    await db.events.record(handled, [], b"{}")
    reader = await key(db, "events:read")
    _, letters = await get(admin, "/api/v1/dead-letters?limit=1", reader)
    assert [letter["id"] for letter in letters["items"]] == ["d-1"]
    _, rest = await get(admin, f"/api/v1/dead-letters?cursor={letters['next_cursor']}", reader)
    assert [letter["id"] for letter in rest["items"]] == ["d-0"] and rest["next_cursor"] is None
    assert await inspector.count(amqp.dead_letter_queue) == 2  # listing took nothing
    async with admin.post(
        "/api/v1/dead-letters/replay", json={"ids": ["d-1"]}, headers=reader
    ) as r:
        assert r.status == 403
    replayer = await key(db, "events:replay")
    async with admin.post("/api/v1/dead-letters/replay", json={}, headers=replayer) as r:
        assert r.status == 400  # replaying everything must be asked for explicitly
        assert r.content_type == "application/problem+json"
    async with admin.post(
        "/api/v1/dead-letters/replay", json={"all": True, "dry_run": True}, headers=replayer
    ) as r:
        assert (await r.json())["matched"] == 2  # the handled event is no dead letter
    async with admin.post(
        "/api/v1/dead-letters/replay", json={"ids": ["d-1", "h-0"]}, headers=replayer
    ) as r:
        assert r.status == 200
        assert await r.json() == {"matched": 1, "replayed": ["d-1"], "not_replayed": []}
    await inspector.wait_count(amqp.dead_letter_queue, 1)
    await inspector.wait_count(amqp.queue, 1)


async def test_every_admin_call_is_logged_with_the_key_name_not_the_key(
    admin: TestClient[Any, Any], db: Database
) -> None:
    stream = io.StringIO()
    logs.configure(LogSettings(format="json"), stream=stream, cache=False)
    try:
        headers = await key(db, "events:read")
        await get(admin, "/api/v1/events", headers)
    finally:
        logs.configure(LogSettings(format="console"), cache=False)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    calls = [line for line in lines if line["event"] == "admin.call"]
    assert calls[0]["key"] == "ci" and calls[0]["status"] == 200
    assert headers["Authorization"].split()[1] not in stream.getvalue()


async def test_keys_cli_prints_a_key_once_and_stores_only_its_hash(
    settings: Settings, db: Database
) -> None:
    out = io.StringIO()
    assert await run_keys(settings, "create", None, "ci", "events:read,events:replay", "", out) == 0
    text = out.getvalue().splitlines()[-1]
    assert text.startswith("lxb_")
    listed = io.StringIO()
    assert await run_keys(settings, "list", None, None, "", "", listed) == 0
    # The secret is URL-safe base64 and may itself contain "_": split only twice.
    _, key_id, secret = text.split("_", 2)
    assert secret not in listed.getvalue()
    assert '"scopes":["events:read","events:replay"]' in listed.getvalue()
    assert await run_keys(settings, "revoke", key_id, None, "", "", io.StringIO()) == 0
    assert await db.keys.verify(text) is None
    bad = io.StringIO()
    assert await run_keys(settings, "create", None, "x", "events:write", "", bad) == 2
    assert "unknown scopes ['events:write']" in bad.getvalue()


@pytest.mark.parametrize(
    "query",
    ["limit=%C2%B2", "limit=99999999999999999999", "since=99999999999d",
     "until=9999-12-31T23:59:59-01:00x", "cursor=%C2%B2"],
)  # fmt: skip
async def test_odd_query_values_are_400s(
    admin: TestClient[Any, Any], db: Database, query: str
) -> None:
    headers = await key(db, "events:read", "runs:read")
    for path in ("/api/v1/events", "/api/v1/runs"):
        status, _ = await get(admin, f"{path}?{query}", headers)
        assert status in (200, 400), (path, query)  # runs ignore since/until
    for listing in ("/api/v1/events", "/api/v1/dead-letters"):  # a problem, as `get` checks
        assert (await get(admin, f"{listing}?{query}", headers))[0] == 400
