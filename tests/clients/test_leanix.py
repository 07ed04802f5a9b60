"""The real LeanIX client against the LeanIX simulator, over HTTP on loopback.

Token cache and renewal, reads and writes, optimistic locking, errors by kind, 429
back-off, timeouts, client-side pacing, batched updates, webhooks, and that no
credential ever shows in a repr, an exception or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
import structlog

from service.clients.base import Response
from service.clients.leanix import LeanixClient, jwt_subject
from service.clients.leanix_graphql import (
    UPDATE_MUTATION,
    FactSheet,
    GraphQLErrors,
    Patch,
    Update,
)
from service.clients.ratelimit import RateLimiter
from service.errors import VendorRejected, VendorUnavailable
from service.settings import LeanixApi
from service.simulators.leanix import (
    DEFAULT_API_TOKEN,
    DEFAULT_USER_ID,
    GRAPHQL_PATH,
    TOKEN_PATH,
    LeanixSimulator,
)
from tests.clients.support import CallbackInbox

MakeClient = Callable[..., LeanixClient]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[LeanixSimulator]:
    simulator = LeanixSimulator()
    async with simulator.serve():
        yield simulator


@pytest.fixture
def make_client(sim: LeanixSimulator, session: aiohttp.ClientSession) -> MakeClient:
    """A client of `sim`; keywords override settings, `clock` is the client's clock."""

    def make(clock: Callable[[], float] = time.monotonic, **overrides: Any) -> LeanixClient:
        settings = LeanixApi(
            base_url=sim.base_url, api_token=DEFAULT_API_TOKEN, rate_limit_rps=1000.0, timeout_s=5
        )
        return LeanixClient(session, dataclasses.replace(settings, **overrides), clock=clock)

    return make


@pytest.fixture
def client(make_client: MakeClient) -> LeanixClient:
    return make_client()


async def raised(call: Awaitable[Any]) -> Exception:
    """The exception an awaitable raises."""
    with pytest.raises(Exception) as caught:
        await call
    assert isinstance(caught.value, Exception)
    return caught.value


# --- access token -----------------------------------------------------------------------------


async def test_token_is_fetched_once_and_cached(sim: LeanixSimulator, client: LeanixClient) -> None:
    fs_id = sim.add_fact_sheet(name="CRM")
    await asyncio.gather(*(client.fact_sheet(fs_id) for _ in range(5)))
    await client.fact_sheet(fs_id)
    assert sim.requests["token"] == 1
    assert client.technical_user_id == DEFAULT_USER_ID


async def test_our_ids_are_the_tokens_sub_and_principal_id(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    assert client.own_user_ids == frozenset()  # nothing known before the first token
    sim.principal_ids[DEFAULT_USER_ID] = "0c4e5a1f-2b3d-4e6f-8a9b-1c2d3e4f5a6b"
    await client.authenticate()
    assert client.own_user_ids == {DEFAULT_USER_ID, "0c4e5a1f-2b3d-4e6f-8a9b-1c2d3e4f5a6b"}


async def test_token_is_renewed_shortly_before_it_expires(
    sim: LeanixSimulator, make_client: MakeClient
) -> None:
    clock = FakeClock()
    client = make_client(clock=clock)
    fs_id = sim.add_fact_sheet()
    await client.fact_sheet(fs_id)
    clock.now += 3599 - 60 - 1  # expires_in 3599, renewed 60 s early
    await client.fact_sheet(fs_id)
    assert sim.requests["token"] == 1
    clock.now += 2
    await client.fact_sheet(fs_id)
    assert sim.requests["token"] == 2


async def test_a_401_renews_the_token_and_retries_once(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM")
    await client.fact_sheet(fs_id)
    sim.expire_tokens()
    assert (await client.fact_sheet(fs_id)).name == "CRM"
    assert sim.requests["token"] == 2
    assert sim.requests["unauthorized"] == 1


async def test_a_fresh_token_refused_again_is_rejected(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    sim.token_ttl_s = 0  # every token is expired when issued
    exc = await raised(client.fact_sheet(sim.add_fact_sheet()))
    assert isinstance(exc, VendorRejected)
    assert exc.status == 401
    assert sim.requests["token"] == 2


async def test_a_wrong_api_token_is_rejected(make_client: MakeClient) -> None:
    exc = await raised(make_client(api_token="not-the-token").authenticate())
    assert isinstance(exc, VendorRejected)
    assert exc.status == 401


async def test_the_token_endpoint_takes_basic_auth_or_client_credentials(
    sim: LeanixSimulator, session: aiohttp.ClientSession
) -> None:
    url = sim.base_url + TOKEN_PATH
    basic = {"Authorization": aiohttp.encode_basic_auth("apitoken", DEFAULT_API_TOKEN)}
    form = {"client_id": "apitoken", "client_secret": DEFAULT_API_TOKEN}
    attempts = [
        (basic, {"grant_type": "client_credentials"}, 200),
        ({}, {**form, "grant_type": "client_credentials"}, 200),
        (basic, {"grant_type": "password"}, 400),
        ({}, {**form, "client_secret": "wrong", "grant_type": "client_credentials"}, 401),
    ]
    answers = []
    for headers, data, expected in attempts:
        async with session.post(url, headers=headers, data=data) as response:
            assert response.status == expected
            answers.append(await response.json())
    assert answers[0]["token_type"] == "bearer"
    assert answers[0]["expires_in"] == 3599
    payload = answers[0]["access_token"].split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == DEFAULT_USER_ID
    assert claims["principal"]["permission"]["workspaceId"] == sim.workspace_id
    assert {"exp", "iss"} <= set(claims)


def test_jwt_subject_tolerates_tokens_that_are_not_jwts() -> None:
    assert jwt_subject("opaque-token") is None
    assert jwt_subject("a.!!!.c") is None
    assert jwt_subject("a.bm90IGpzb24.c") is None  # "not json"
    assert jwt_subject("a.eyJzdWIiOiAidSJ9.c") == "u"  # {"sub": "u"}


# --- reads and writes -------------------------------------------------------------------------


async def test_read_a_fact_sheet(sim: LeanixSimulator, client: LeanixClient) -> None:
    fs_id = sim.add_fact_sheet(
        name="CRM",
        description="Customers",
        lifecycle={"active": "2023-08-31", "endOfLife": "2030-10-26"},
        tags=["cloud"],
        alias="crm-1",
        costCentre="CC-42",
    )
    fs = await client.fact_sheet(
        fs_id, extra='... on Application { alias } cc: field(key: "costCentre")'
    )
    assert (fs.id, fs.rev, fs.name, fs.type, fs.status) == (
        fs_id,
        0,
        "CRM",
        "Application",
        "ACTIVE",
    )
    assert fs.tags == ("cloud",)
    assert fs.lifecycle == {"active": "2023-08-31", "endOfLife": "2030-10-26"}
    assert fs.fields["lifecycle"]["asString"] == "active"
    assert fs.fields["description"] == "Customers"
    assert (fs.fields["alias"], fs.fields["cc"]) == ("crm-1", "CC-42")
    assert fs.raw["id"] == fs_id


async def test_an_unknown_fact_sheet_is_rejected(client: LeanixClient) -> None:
    exc = await raised(client.fact_sheet("00000000-0000-0000-0000-000000000000"))
    assert isinstance(exc, GraphQLErrors)
    assert exc.codes == ["FS_NOT_FOUND"]


async def test_update_with_string_and_json_patches(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM", lifecycle={"plan": "2020-01-01"})
    patches = [
        Patch("replace", "/description", "Customer relations"),
        Patch.json(
            "replace", "/lifecycle", {"phases": [{"phase": "active", "startDate": "2021-03-01"}]}
        ),
        Patch("replace", "/lifecycle/endOfLife", "2031-12-31"),
        Patch("replace", "/businessCriticality", "missionCritical"),
    ]
    fs = await client.update_fact_sheet(fs_id, patches, comment="synced by the bridge")
    assert fs.rev == 1
    assert fs.lifecycle == {"active": "2021-03-01", "endOfLife": "2031-12-31"}  # plan overwritten
    assert fs.fields["description"] == "Customer relations"
    mutation = sim.mutations[-1]
    assert mutation["comment"] == "synced by the bridge"
    assert mutation["user_id"] == DEFAULT_USER_ID
    assert all(isinstance(p["value"], str) for p in mutation["patches"])
    assert sim.fact_sheets[fs_id].fields["businessCriticality"] == "missionCritical"


def test_patch_values_are_always_strings() -> None:
    with pytest.raises(TypeError):
        Patch("replace", "/lifecycle", {"phases": []})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Patch("move", "/name", "x")  # type: ignore[arg-type]
    assert Patch.json("add", "/tags", [{"tagName": "a"}]).value == '[{"tagName":"a"}]'
    assert Patch("remove", "/lifecycle/plan").variable() == {
        "op": "remove",
        "path": "/lifecycle/plan",
    }
    with pytest.raises(ValueError, match="a remove patch takes no value"):
        Patch("remove", "/tags", '[{"tagName": "a"}]')  # the contract: remove has no value


async def test_the_simulator_refuses_a_remove_with_a_value(
    sim: LeanixSimulator, client: LeanixClient, session: aiohttp.ClientSession
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM", tags=["a"])
    basic = {"Authorization": aiohttp.encode_basic_auth("apitoken", DEFAULT_API_TOKEN)}
    form = {"grant_type": "client_credentials"}
    async with session.post(sim.base_url + TOKEN_PATH, headers=basic, data=form) as answer:
        token = (await answer.json())["access_token"]
    patches = [{"op": "remove", "path": "/tags", "value": '[{"tagName": "a"}]'}]
    body = {"query": UPDATE_MUTATION, "variables": {"id": fs_id, "rev": 0, "patches": patches}}
    bearer = {"Authorization": f"Bearer {token}"}
    async with session.post(sim.base_url + GRAPHQL_PATH, json=body, headers=bearer) as answer:
        errors = (await answer.json())["errors"]
    assert "a remove patch takes no value" in errors[0]["message"]
    fs = await client.update_fact_sheet(fs_id, [Patch("remove", "/tags")])
    assert fs.tags == ()


async def test_validate_only_saves_nothing(sim: LeanixSimulator, client: LeanixClient) -> None:
    fs_id = sim.add_fact_sheet(name="CRM")
    fs = await client.update_fact_sheet(
        fs_id, [Patch("replace", "/name", "CRM 2")], validate_only=True
    )
    assert fs.name == "CRM 2"
    assert (sim.fact_sheets[fs_id].name, sim.fact_sheets[fs_id].rev) == ("CRM", 0)
    assert sim.mutations == []


async def test_a_stale_rev_is_reread_and_the_patches_reapplied(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM")
    read = await client.fact_sheet(fs_id)
    sim.fact_sheets[fs_id].rev += 1  # someone else saved in between
    before = sim.requests["graphql"]
    fs = await client.update_fact_sheet(
        fs_id, [Patch("replace", "/description", "x")], rev=read.rev
    )
    assert fs.rev == read.rev + 2
    assert fs.fields["description"] == "x"
    assert sim.requests["graphql"] - before == 3  # stale write, re-read, write


async def test_create_comment(sim: LeanixSimulator, client: LeanixClient) -> None:
    fs_id = sim.add_fact_sheet()
    comment_id = await client.create_comment(fs_id, "What successor is planned for this?")
    [comment] = sim.comments[fs_id]
    assert comment["id"] == comment_id
    assert comment["message"] == "What successor is planned for this?"
    assert comment["status"] == "ACTIVE"


async def test_add_tags_creates_and_attaches_them_once(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(tags=["cloud"])
    fs = await client.add_tags(fs_id, ["cloud", "critical"])
    assert sorted(fs.tags) == ["cloud", "critical"]
    assert fs.rev == 1


async def test_a_model_violation_is_rejected_with_its_code(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet()
    exc = await raised(client.update_fact_sheet(fs_id, [Patch("replace", "/lxState", "SHINY")]))
    assert isinstance(exc, GraphQLErrors)
    assert isinstance(exc, VendorRejected)
    assert exc.codes == ["FS_VALIDATION_INVALID_PATCH"]
    assert "[FS_VALIDATION_INVALID_PATCH]" in str(exc)
    assert "MODEL_COMPLIANT" in str(exc)
    assert exc.errors[0]["extensions"]["objectPath"] == "/lxState"
    assert not exc.stale
    assert sim.fact_sheets[fs_id].rev == 0


async def test_an_invalid_query_is_rejected(client: LeanixClient) -> None:
    exc = await raised(client.graphql("{ allTheThings }"))
    assert isinstance(exc, GraphQLErrors)
    assert "allTheThings" in str(exc)


@pytest.mark.parametrize(
    ("message", "error_type", "stale"),
    [
        ("[FS_VALIDATION_REVISION_MISMATCH] rev 3 is not the latest", None, True),
        ("[X] The fact sheet was modified by another user", "OUTDATED_VERSION", True),
        ("[X] Conflicting update", None, True),
        ("[FS_VALIDATION_INVALID_PATCH] this would prevent a review", "MODEL_COMPLIANT", False),
    ],
)
def test_stale_rev_errors_are_recognised(message: str, error_type: str | None, stale: bool) -> None:
    error = {"message": message, "extensions": {"errorType": error_type}}
    assert GraphQLErrors([error]).stale is stale


# --- outages and limits -----------------------------------------------------------------------


async def test_a_5xx_is_unavailable_without_a_retry(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    await client.authenticate()
    sim.faults.fail(503)
    seen = sim.faults.requests
    exc = await raised(client.fact_sheet(sim.add_fact_sheet()))
    assert isinstance(exc, VendorUnavailable)
    assert sim.faults.requests - seen == 1


async def test_a_429_is_waited_out_for_its_retry_after(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM")
    await client.authenticate()
    sim.faults.retry_after_s = 1
    sim.faults.fail(429)
    seen, started = sim.faults.requests, time.monotonic()
    assert (await client.fact_sheet(fs_id)).name == "CRM"
    assert time.monotonic() - started >= 0.9
    assert sim.faults.requests - seen == 2


async def test_a_429_holds_the_whole_pace_not_just_this_call(
    sim: LeanixSimulator, make_client: MakeClient
) -> None:
    held: list[float] = []

    class Recording(RateLimiter):
        async def hold(self, wait_s: float) -> None:
            held.append(wait_s)
            await super().hold(wait_s)

    pace = Recording(1000.0)
    client = LeanixClient(make_client().session, make_client().settings, limiter=pace)
    await client.authenticate()
    sim.faults.retry_after_s = 0
    sim.faults.fail(429, times=2)
    await client.fact_sheet(sim.add_fact_sheet())
    assert held == [0.0, 0.0]  # shared by every worker when the pace is the store's


async def test_429s_give_up_after_five_retries(sim: LeanixSimulator, client: LeanixClient) -> None:
    await client.authenticate()
    sim.faults.retry_after_s = 0
    sim.faults.fail(429, times=10)
    seen = sim.faults.requests
    exc = await raised(client.fact_sheet(sim.add_fact_sheet()))
    assert isinstance(exc, VendorUnavailable)
    assert exc.retry_after_s == 0
    assert sim.faults.requests - seen == 6


async def test_a_hung_request_times_out(sim: LeanixSimulator, make_client: MakeClient) -> None:
    client = make_client(timeout_s=0.2)
    await client.authenticate()
    sim.faults.hang()
    exc = await raised(client.fact_sheet(sim.add_fact_sheet()))
    assert isinstance(exc, VendorUnavailable)
    assert "timed out" in str(exc)


async def test_the_simulator_limits_each_user(sim: LeanixSimulator, client: LeanixClient) -> None:
    sim.rate_limit_rps = 3
    await client.authenticate()
    [access_token] = sim.issued
    headers = {"Authorization": f"Bearer {access_token}"}
    body = {"query": "{ __typename }"}
    url = sim.base_url + GRAPHQL_PATH
    async with aiohttp.ClientSession() as http:

        async def post() -> tuple[int, str | None, bytes]:
            async with http.post(url, json=body, headers=headers) as response:
                return response.status, response.headers.get("Retry-After"), await response.read()

        answers = await asyncio.gather(*(post() for _ in range(5)))
    limited = [a for a in answers if a[0] == 429]
    assert len(limited) == 2
    assert all(a[1] == "1" and b"USER_INTERVAL_REQUEST_LIMIT_EXCEEDED" in a[2] for a in limited)


async def test_the_client_waits_out_the_simulators_429(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    sim.rate_limit_rps = 2
    fs_id = sim.add_fact_sheet()
    await asyncio.gather(*(client.fact_sheet(fs_id) for _ in range(3)))
    assert sim.requests["rate_limited"] >= 1
    assert sim.requests["graphql"] == 3


async def test_rate_limiter_queues_concurrent_callers() -> None:
    clock, slept = FakeClock(0.0), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(10, burst=1, clock=clock, sleep=sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(4)))
    assert slept == pytest.approx([0.1, 0.2, 0.3])


async def test_rate_limiter_refills_with_time() -> None:
    clock, slept = FakeClock(0.0), []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = RateLimiter(10, burst=2, clock=clock, sleep=sleep)
    for _ in range(5):
        await limiter.acquire()
    assert slept == pytest.approx([0.1, 0.1, 0.1])
    clock.now += 10  # a long pause refills only up to the burst
    for _ in range(3):
        await limiter.acquire()
    assert slept[3:] == pytest.approx([0.1])


async def test_the_client_keeps_under_the_rate_limit(
    session: aiohttp.ClientSession,
) -> None:
    simulator = LeanixSimulator(rate_limit_rps=20)
    async with simulator.serve() as base_url:
        settings = LeanixApi(base_url=base_url, api_token=DEFAULT_API_TOKEN, rate_limit_rps=20)
        client = LeanixClient(session, settings)
        fs_id = simulator.add_fact_sheet()
        started = time.monotonic()
        await asyncio.gather(*(client.fact_sheet(fs_id) for _ in range(25)))
        elapsed = time.monotonic() - started
    assert simulator.requests["rate_limited"] == 0
    assert simulator.requests["graphql"] == 25
    assert elapsed >= 1.1  # 26 requests (the token's too) at 20 a second, one at a time


# --- update_many ------------------------------------------------------------------------------


async def test_update_many_batches_and_reports_each_error(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    ids = [sim.add_fact_sheet(name=f"App {n}") for n in range(100)]
    updates = [
        Update(i, [Patch("replace", "/description", f"batch {n}")], rev=0)
        for n, i in enumerate(ids)
    ]
    updates[42] = Update(ids[42], [Patch("replace", "/lxState", "SHINY")], rev=0)
    await client.authenticate()
    results = await client.update_many(updates)
    assert sim.requests["graphql"] <= 5
    assert [r.update for r in results] == updates
    failed = [n for n, r in enumerate(results) if not r.ok]
    assert failed == [42]
    [error] = results[42].errors
    assert error["path"] == ["u17"]  # 42 is the 18th of the second batch of 25
    assert error["message"].startswith("[FS_VALIDATION_INVALID_PATCH]")
    assert isinstance(results[0].fact_sheet, FactSheet)
    assert results[0].fact_sheet.rev == 1
    assert sim.fact_sheets[ids[99]].description == "batch 99"
    assert sim.fact_sheets[ids[42]].rev == 0


async def test_update_many_reads_missing_revs_and_retries_stale_ones(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    ids = [sim.add_fact_sheet() for _ in range(30)]
    sim.fact_sheets[ids[3]].rev = 7  # changed since we read rev 0
    updates = [Update(i, [Patch("replace", "/description", "first")], rev=0) for i in ids]
    updates.append(Update(ids[0], [Patch("replace", "/alias", "second")]))  # rev to be read
    updates.append(Update("no-such-id", [Patch("replace", "/description", "x")]))
    await client.authenticate()
    results = await client.update_many(updates)
    assert [n for n, r in enumerate(results) if not r.ok] == [31]
    assert results[31].errors[0]["message"].startswith("[FS_NOT_FOUND]")
    assert sim.fact_sheets[ids[3]].rev == 8
    assert sim.fact_sheets[ids[0]].rev == 2  # the batch's own earlier write made the rev stale
    assert sim.fact_sheets[ids[0]].fields["alias"] == "second"
    assert sim.requests["graphql"] == 5  # read, 2 writes, re-read, write


# --- webhooks ---------------------------------------------------------------------------------


async def test_saved_updates_send_events_as_the_technical_user(
    sim: LeanixSimulator, client: LeanixClient, inbox: CallbackInbox
) -> None:
    sim.subscribe(inbox.url, "Basic c2ltOnNpbQ==")
    fs_id = sim.add_fact_sheet(name="CRM")
    await client.update_fact_sheet(fs_id, [Patch("replace", "/description", "x")])
    await client.update_fact_sheet(fs_id, [Patch("replace", "/name", "y")], validate_only=True)
    await sim.drain()
    [(headers, body)] = inbox.take_all()
    event = orjson.loads(body)
    assert headers["Authorization"] == "Basic c2ltOnNpbQ=="
    assert headers["User-Agent"] == "Webhooks"
    assert headers["Content-Type"] == "application/json"
    assert event["type"] == "FactSheetUpdatedEvent"
    assert event["userId"] == client.technical_user_id == DEFAULT_USER_ID
    assert event["factSheet"]["rev"] == 1
    assert {"name": "description", "data": {"type": "StringValue", "value": "x"}} in event[
        "factSheet"
    ]["fields"]


async def test_send_event_in_each_payload_mode(sim: LeanixSimulator, inbox: CallbackInbox) -> None:
    fs_id = sim.add_fact_sheet(name="CRM", lifecycle={"active": "2023-08-31"})
    for mode in ("DEFAULT", "WRAPPED_EVENT", "NO_PAYLOAD"):
        status = await sim.send_event(
            inbox.url, "Basic x", fs_id, "FactSheetCreatedEvent", "someone", mode
        )
        assert status == 200
    plain, wrapped, empty = [callback.json() for callback in inbox.take_all()]
    assert plain["type"] == "FactSheetCreatedEvent"
    assert plain["userId"] == "someone"
    assert plain["factSheet"]["fields"][0]["data"]["type"] == "Lifecycle"
    assert {
        "id",
        "createdAt",
        "workspaceId",
        "transactionSequenceNumber",
        "clonedFactSheet",
    } <= set(plain)
    assert wrapped["type"] == "FACT_SHEET_CREATED"
    assert wrapped["tags"] == ["pathfinder", "FACT_SHEET_CREATED"]
    assert wrapped["payload"]["id"] > plain["id"]
    assert empty == {}


# --- secrets ----------------------------------------------------------------------------------


async def test_no_credential_shows_in_reprs_errors_or_logs(
    sim: LeanixSimulator, make_client: MakeClient
) -> None:
    client = make_client()
    with structlog.testing.capture_logs() as logs:
        await client.authenticate()
        [access_token] = sim.issued
        sim.faults.fail(503)
        errors = [await raised(client.fact_sheet("x"))]
        errors.append(await raised(client.update_fact_sheet("x", [Patch("add", "/a", "b")])))
        errors.append(await raised(make_client(api_token="wrong-api-token").authenticate()))
        sim.expire_tokens()
        sim.token_ttl_s = 0
        errors.append(await raised(client.fact_sheet("x")))
    echoed = Response(500, {}, f"echo {DEFAULT_API_TOKEN} {access_token}".encode())
    errors.append(client.translate("POST /x", echoed))
    texts = [repr(client), repr(client.settings), str(logs)]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    for secret in (DEFAULT_API_TOKEN, access_token, "wrong-api-token"):
        assert not any(secret in text for text in texts), secret
    assert repr(client) == f"LeanixClient(base_url={sim.base_url!r})"
