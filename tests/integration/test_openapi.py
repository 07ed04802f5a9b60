"""The OpenAPI document: valid OpenAPI 3.1, the same routes as the app, and the live app
answers as it says.

The app runs on a real port (127.0.0.1) in the test's event loop, with a real RabbitMQ and
an SQLite store in tmp_path; schemathesis generates requests from the document in a worker
thread (hypothesis and `requests` are synchronous, so the loop stays free to serve them)
and checks every answer: never a 5xx, a documented status code, the documented content
type, headers and body schema.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema_rs
import orjson
import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.admin.openapi import document
from service.bus.broker import Broker
from service.probes import worker_app
from service.runs import RunState
from service.settings import Settings
from service.store import Database
from service.store.eventlog import Attempt, LoggedEvent
from service.store.keys import SCOPES
from service.store.waiting import Slots
from service.web import create_app
from tests import senders

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONFORMANCE = CHECKS[1:]  # with the broker down, a 503 is the documented answer
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
RULE = {"name": "r1", "on": "leanix.factsheet.*",
        "start": {"vendor": "uipath", "target": {"release_key": "rk"}}}  # fmt: skip
SIGNERS: dict[str, Callable[[bytes], senders.Request]] = {
    "/webhooks/leanix": senders.leanix,
    "/callbacks/uipath": senders.uipath,
    "/callbacks/robocorp": senders.robocorp,
    "/callbacks/leapwork": senders.leapwork,
    "/callbacks/workato": senders.workato,
}
FIXTURES = {
    "LeanixEvent": ["leanix-factsheet-created.json", "leanix-factsheet-updated.json",
                    "leanix-wrapped.json", "leanix-callback-reshaped.json"],
    "UiPathEvent": ["uipath-job-completed.json", "uipath-job-stopped.json"],
    "RobocorpEvent": ["robocorp-process-run-completed.json"],
    "LeapworkCallback": ["leapwork-run-finished.json"],
    "WorkatoCallback": ["workato-job-completed.json"],
}  # fmt: skip
Send = Callable[[Case], requests.Response]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """One rule, and the store in an SQLite file of this test's own."""
    made = make_settings(store={"url": f"sqlite+aiosqlite:///{tmp_path / 'openapi.sqlite3'}"})
    return Settings(**{**vars(made), "rules": (RULE,)})


@pytest.fixture
def app(settings: Settings, broker: Broker, db: Database) -> web.Application:
    return create_app(settings, broker, db)


async def serve(app: web.Application) -> AsyncIterator[str]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def live(app: web.Application) -> AsyncIterator[str]:
    """The base URL of the app, served on a real port."""
    async for url in serve(app):
        yield url


@pytest.fixture
async def down(settings: Settings, db: Database) -> AsyncIterator[str]:
    """The base URL of the app whose broker never connects: RabbitMQ is down."""
    async for url in serve(create_app(settings, Broker(settings.amqp), db)):
        yield url


@pytest.fixture
async def admin_key(db: Database) -> dict[str, str]:
    """A key holding every scope."""
    _, text = await db.keys.create("openapi", sorted(SCOPES), [])
    return {"Authorization": f"Bearer {text}"}


@pytest.fixture
def schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(document())


# --- helpers -------------------------------------------------------------------------------


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "OPTIONS", "*")
    }


def operations(schema: schemathesis.BaseSchema, *paths: str) -> Iterator[Any]:
    """The operations whose path starts with one of `paths`."""
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(paths):
            yield operation


def cases(
    schema: schemathesis.BaseSchema, *paths: str, mode: GenerationMode = GenerationMode.POSITIVE
) -> st.SearchStrategy[Case]:
    return st.one_of([op.as_strategy(generation_mode=mode) for op in operations(schema, *paths)])


def explore(
    strategy: st.SearchStrategy[Case], check: Callable[[Case], None], examples: int
) -> None:
    """Run `check` on `examples` generated cases (blocking: call it in a thread)."""

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        check(case)

    run()


def sender(base_url: str, admin: dict[str, str]) -> Send:
    """Send a case as is (admin calls with `admin`), or signed if it is a webhook."""
    session = requests.Session()

    def send(case: Case) -> requests.Response:
        if case.path not in SIGNERS:
            return case.call(base_url=base_url, session=session, headers=admin)
        body = json.dumps(case.body).encode()
        signed = SIGNERS[case.path](body)
        return case.call(base_url=base_url, session=session, headers=signed.headers, data=body)

    return send


def checked(
    send: Send, statuses: set[int] | None = None, checks: list[Any] = CHECKS
) -> Callable[[Case], None]:
    """Send, hold the answer to the document and, if given, to `statuses`."""

    def check(case: Case) -> None:
        response = send(case)
        case.validate_response(response, checks=checks)
        if statuses is not None:
            assert response.status_code in statuses, (case.path, response.text)

    return check


async def seed(db: Database, broker: Broker, settings: Settings) -> None:
    """Something in every list the admin API serves, so the 200 schemas are exercised."""
    for n in range(3):
        at = time.time() - n
        head = LoggedEvent(f"e-{n}", "leanix.factsheet.updated", "leanix:ws", f"fs-{n}", None,
                           at, at, "dead_lettered" if n else "handled", n + 1,
                           "RejectEvent: no" if n else None, {"n": n})  # fmt: skip
        tries = [Attempt("h", n + 1, "dead_letter" if n else "ok", None, at, 1.5)]
        await db.events.record(head, tries, orjson.dumps({"n": n}) if n else None)
        await db.runs.begin(correlation_id=f"c-{n}", vendor="uipath", rule="r1",
                            event_id=f"e-{n}", fact_sheet_id="fs-1",
                            target={"release_key": "rk"}, inputs={})  # fmt: skip
        await db.runs.started(f"c-{n}", RunState("uipath", f"run-{n}", "running"), 0.0)
    run = await db.runs.by_correlation("c-0")
    assert run is not None
    await db.runs.complete(run, RunState("uipath", "run-0", "succeeded", "Successful"), "e-9")
    await db.runs.written_back(run.id)
    for n in range(2):  # starts that wait (GET /api/v1/runs?state=waiting)
        await db.waiting.add(correlation_id=f"w-{n}", rule="r1", target_key="t", event="{}",
                             event_id=f"e-{n}", fact_sheet_id="fs-1", due_at=1.0)  # fmt: skip
    held, _ = await db.waiting.claim(Slots("t", ("r1",), None), "w", 60, 60)
    await db.waiting.later(held.id, "w", time.time() + 3600, "uipath: 503")
    await dead_letters(broker, settings)


async def dead_letters(broker: Broker, settings: Settings) -> None:
    full = {
        "x-bridge-error": "RejectEvent: no",
        "x-bridge-failed-handlers": ["h"],
        "x-bridge-attempts": 2,
        "x-bridge-dead-lettered-at": "2026-01-01T00:00:00+00:00",
    }
    for n, headers in enumerate((full, {"x-bridge-error": "not a CloudEvent"})):
        body = orjson.dumps({"specversion": "1.0", "id": f"d-{n}", "source": "t", "type": "a.b.c"})
        await broker.publish(body, routing_key="a.b.c", message_id=f"d-{n}", timeout_s=5,
                             exchange=settings.amqp.dead_letter_exchange,
                             headers=headers)  # fmt: skip


# --- (a) the document is valid -------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(schema: schemathesis.BaseSchema) -> None:
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    for name, component in doc["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(component), name  # JSON Schema 2020-12


def test_the_fixtures_match_the_documented_bodies() -> None:
    components = document()["components"]["schemas"]
    for name, files in FIXTURES.items():
        validator = jsonschema_rs.validator_for(components[name])
        for file in files:
            validator.validate(orjson.loads(senders.fixture(file)))


def test_every_admin_operation_names_its_scope() -> None:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/v1/"):
                scope = operation["x-required-scope"]
                assert scope in SCOPES, (method, path)
                assert f"`{scope}`" in operation["description"]
                assert operation["security"] == [{"adminKey": []}]


# --- (b) no drift between the document and the routes --------------------------------------


def test_the_document_and_the_routes_agree(app: web.Application) -> None:
    assert served(app) == documented(document())


def test_the_worker_serves_only_documented_routes(broker: Broker) -> None:
    assert served(worker_app(broker, [])) <= documented(document())


async def test_each_admin_route_requires_the_documented_scope(live: str, db: Database) -> None:
    """Every scope but the documented one: 403. The documented one alone: let through."""
    paths = document()["paths"]
    for method, path in sorted(documented(document())):
        if not path.startswith("/api/v1/"):
            continue
        scope = paths[path][method.lower()]["x-required-scope"]
        for scopes, refused in ((SCOPES - {scope}, True), ({scope}, False)):
            _, text = await db.keys.create("scoped", sorted(scopes), [])
            response = await asyncio.to_thread(
                requests.request, method, live + path.replace("{id}", "e-0"), json={},
                headers={"Authorization": f"Bearer {text}"},
            )  # fmt: skip
            assert (response.status_code == 403) is refused, (method, path, response.text)
            assert not refused or scope in response.json()["detail"]


async def test_the_document_is_served(live: str) -> None:
    response = await asyncio.to_thread(requests.get, live + "/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(document()))


# --- (c) the live app holds to the document ------------------------------------------------


async def test_the_admin_api_holds_to_the_document(
    live: str, admin_key: dict[str, str], db: Database, broker: Broker, settings: Settings,
    schema: schemathesis.BaseSchema,
) -> None:  # fmt: skip
    await seed(db, broker, settings)
    check = checked(sender(live, admin_key))
    for mode, examples in ((GenerationMode.POSITIVE, 150), (GenerationMode.NEGATIVE, 100)):
        await asyncio.to_thread(explore, cases(schema, "/api/v1/", mode=mode), check, examples)


async def test_the_probes_and_the_console_hold_to_the_document(
    live: str, schema: schemathesis.BaseSchema
) -> None:
    check = checked(sender(live, {}), {200})
    paths = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/console")
    await asyncio.to_thread(explore, cases(schema, *paths), check, 10)


async def test_unauthenticated_webhooks_get_401_as_documented(
    live: str, schema: schemathesis.BaseSchema
) -> None:
    session = requests.Session()

    def check(case: Case) -> None:
        response = case.call(base_url=live, session=session)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == 401, response.text

    await asyncio.to_thread(explore, cases(schema, *SIGNERS), check, 60)


async def test_signed_webhooks_hold_to_the_document(
    live: str, schema: schemathesis.BaseSchema
) -> None:
    check = checked(sender(live, {}), {202, 400})
    await asyncio.to_thread(explore, cases(schema, *SIGNERS), check, 120)


async def test_with_the_broker_down_the_answers_hold_to_the_document(
    down: str, admin_key: dict[str, str], schema: schemathesis.BaseSchema
) -> None:
    """Signed webhooks get 503 + Retry-After, /readyz 503; the dead letters are listed from
    the event log all the same."""
    check = checked(sender(down, admin_key), {503, 400}, CONFORMANCE)
    await asyncio.to_thread(explore, cases(schema, *SIGNERS), check, 20)
    await asyncio.to_thread(explore, cases(schema, "/readyz"), check, 10)
    listed = checked(sender(down, admin_key), {200, 400}, CONFORMANCE)
    listing = [op.as_strategy() for op in operations(schema, "/api/v1/dead-letters")
               if op.method.upper() == "GET"]  # fmt: skip
    await asyncio.to_thread(explore, st.one_of(listing), listed, 10)
