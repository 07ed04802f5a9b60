"""The `http` platform's client against the simulated endpoint over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from service import callback_tokens
from service.cloudevent import CloudEvent
from service.errors import VendorRejected, VendorUnavailable
from service.vendors.adapter import SharedKeys
from service.vendors.http import callback
from service.vendors.http.client import HttpClient
from service.vendors.http.settings import Credential, HttpApi, HttpSource
from service.vendors.http.simulator import API_KEY_HEADER, FAILURE, HttpEndpointSimulator
from tests.clients.support import CallbackInbox, poll_state, wait_until

API_KEY = "http-endpoint-api-key-never-logged-7a1c"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SIGNING_KEY = "http-test-callback-signing-key-0042-abcdef"
KEYS = SharedKeys(300, (SIGNING_KEY,))
CID = "6f1c2a9e-3b7d-5e40-9a1f-0c2b4d6e8f10"
INPUTS = {"factSheetId": "95fbeddd", "name": "CRM"}


@pytest.fixture(autouse=True)
def vendor_contract() -> Iterator[None]:
    """Any endpoint is the contract here: the rule describes it, not ../shared/contracts."""
    yield


@pytest.fixture
async def sim() -> AsyncIterator[HttpEndpointSimulator]:
    simulator = HttpEndpointSimulator(API_KEY, WHSEC, run_duration_s=0.05)
    async with simulator.serve():
        yield simulator


def api(**overrides: Any) -> HttpApi:
    values: dict[str, Any] = {
        "timeout_s": 5.0,
        "plain_http_hosts": ("127.0.0.1",),
        "credentials": (Credential("flows", ("127.0.0.1",), {API_KEY_HEADER: API_KEY}),),
    }
    return HttpApi(**(values | overrides))


@pytest.fixture
def make_client(session: aiohttp.ClientSession) -> Callable[..., HttpClient]:
    def make(**overrides: Any) -> HttpClient:
        return HttpClient(session, api(**overrides))

    return make


@pytest.fixture
def client(make_client: Callable[..., HttpClient]) -> HttpClient:
    return make_client()


def target(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "credential": "flows", "state": "/status", "outputs": "/outputs",
            "detail": "/error", **extra}  # fmt: skip


# --- starting and polling ------------------------------------------------------------------


async def test_an_accepted_run_is_polled_at_its_status_url_to_success(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    sim.next_outcome("succeeded", {"hostname": "crm-01"})

    run = await client.start(target(url), INPUTS, correlation_id=CID)

    assert (run.status, run.vendor_state) == ("running", "queued")
    assert run.run_id == "/flows/provision/runs/run-1"
    assert run.url == f"{sim.base_url}/flows/provision/runs/run-1"
    final = await poll_state(lambda: client.status(run.run_id, target(url)))
    assert (final.status, final.vendor_state) == ("succeeded", "succeeded")
    assert final.outputs == {"hostname": "crm-01"}
    [started] = sim.runs.values()
    assert started.body == INPUTS
    assert started.correlation_id == CID
    assert started.headers[API_KEY_HEADER] == API_KEY


async def test_a_failed_run_is_polled_to_failure_with_its_error(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    sim.next_outcome("failed")

    run = await client.start(target(url), INPUTS, correlation_id=CID)
    final = await poll_state(lambda: client.status(run.run_id, target(url)))

    assert (final.status, final.detail) == ("failed", FAILURE)


async def test_without_a_state_pointer_202_is_running_and_200_is_done(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    plain = {"url": url, "credential": "flows"}

    run = await client.start(plain, INPUTS, correlation_id=CID)
    final = await poll_state(lambda: client.status(run.run_id, plain))

    assert (run.status, run.vendor_state) == ("running", "202")
    assert (final.status, final.vendor_state) == ("succeeded", "200")


async def test_a_rule_maps_the_endpoints_own_words(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    sim.next_outcome("succeeded")
    words = target(url, states={"succeeded": "failed"})  # this endpoint's "succeeded" lies

    run = await client.start(words, INPUTS, correlation_id=CID)
    final = await poll_state(lambda: client.status(run.run_id, words))

    assert final.status == "failed"


async def test_a_synchronous_answer_is_the_runs_outcome(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("lookup", mode="sync")
    sim.next_outcome("succeeded", {"owner": "Ada"})

    run = await client.start(target(url, run_id="/id"), INPUTS, correlation_id=CID)

    assert run.terminal
    assert (run.status, run.run_id, run.outputs) == ("succeeded", "run-1", {"owner": "Ada"})


async def test_a_run_without_a_status_url_awaits_its_callback(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("quiet", mode="silent")

    run = await client.start(target(url), INPUTS, correlation_id=CID)
    later = await client.status(run.run_id, target(url))

    assert (run.status, run.run_id) == ("running", CID)
    assert later.status == "running"
    assert "callback" in (later.detail or "")
    assert sim.faults.requests == 1  # nothing to poll: the endpoint is not asked


async def test_a_status_url_on_another_host_is_never_followed(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("sly", mode="elsewhere")

    run = await client.start(target(url, run_id="/id"), INPUTS, correlation_id=CID)
    later = await client.status(run.run_id, target(url, run_id="/id"))

    assert (run.run_id, run.url) == ("run-1", None)
    assert later.status == "running"
    assert sim.faults.requests == 1


async def test_a_status_pointer_in_the_answer_is_used_instead_of_location(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")

    run = await client.start(target(url, status_url="/statusUrl"), INPUTS, correlation_id=CID)

    assert run.run_id == "/flows/provision/runs/run-1"


# --- what is sent -------------------------------------------------------------------------


async def test_the_body_carries_the_correlation_id_and_callback_where_the_rule_points(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("dispatch")
    rule = target(url, correlation_pointer="/inputs/correlation_id", callback_pointer="/cb")
    inputs = {"ref": "main", "inputs": {"app": "CRM"}}

    await client.start(rule, inputs, correlation_id=CID, callback_url="https://bridge/cb/http")

    [started] = sim.runs.values()
    assert started.body == {"ref": "main", "inputs": {"app": "CRM", "correlation_id": CID},
                            "cb": "https://bridge/cb/http"}  # fmt: skip
    assert inputs == {"ref": "main", "inputs": {"app": "CRM"}}  # the rendered inputs kept


async def test_the_rules_method_literal_headers_and_correlation_header_are_sent(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    sim.add_flow("jobs")
    rule = target(f"{sim.base_url}/flows/jobs/build", method="PUT",
                  headers={"X-Flow": "nightly"}, correlation_header="X-Request-Id")  # fmt: skip

    await client.start(rule, INPUTS, correlation_id=CID)

    [started] = sim.runs.values()
    assert (started.method, started.headers["X-Flow"]) == ("PUT", "nightly")
    assert started.headers["X-Request-Id"] == CID


async def test_inputs_fill_the_urls_variables_encoded_whole_and_leave_the_body(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    sim.add_flow("apps")
    rule = target(f"{sim.base_url}/flows/apps/{{id}}?name={{name}}&mode=full")
    inputs = {"id": "a/../../b?x=1#f", "name": "R&D=1&admin=true #2", "owner": "Ada"}

    await client.start(rule, inputs, correlation_id=CID)

    [started] = sim.runs.values()
    assert started.path == "/flows/apps/a%2F..%2F..%2Fb%3Fx%3D1%23f"
    assert started.query == {"name": "R&D=1&admin=true #2", "mode": "full"}
    assert started.body == {"owner": "Ada"}


# --- errors -------------------------------------------------------------------------------


async def test_429_is_retried_later_after_its_retry_after(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    sim.faults.retry_after_s = 7
    sim.faults.fail(429)

    with pytest.raises(VendorUnavailable) as caught:
        await client.start(target(url), INPUTS, correlation_id=CID)

    assert caught.value.retry_after_s == 7
    assert not sim.runs


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_fault_is_retried_later(
    client: HttpClient, sim: HttpEndpointSimulator, status: int
) -> None:
    url = sim.add_flow("provision")
    sim.faults.fail(status)

    with pytest.raises(VendorUnavailable):
        await client.start(target(url), INPUTS, correlation_id=CID)
    run = await client.start(target(url), INPUTS, correlation_id=CID)  # it recovered

    assert run.status == "running"


async def test_a_slow_endpoint_times_out_as_unavailable(
    make_client: Callable[..., HttpClient], sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    sim.faults.latency_s = 1.0

    with pytest.raises(VendorUnavailable, match="timed out"):
        await make_client(timeout_s=0.2).start(target(url), INPUTS, correlation_id=CID)


async def test_a_polled_server_fault_is_retried_later(
    client: HttpClient, sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    run = await client.start(target(url), INPUTS, correlation_id=CID)
    sim.faults.fail(503)

    with pytest.raises(VendorUnavailable):
        await client.status(run.run_id, target(url))


async def test_a_refused_credential_is_rejected_without_echoing_it(
    make_client: Callable[..., HttpClient], sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")
    wrong = (Credential("flows", ("127.0.0.1",), {API_KEY_HEADER: "wrong-key-4d1e"}),)

    with pytest.raises(VendorRejected) as caught:
        await make_client(credentials=wrong).start(target(url), INPUTS, correlation_id=CID)

    assert caught.value.status == 401
    assert "wrong-key-4d1e" not in str(caught.value)
    assert "wrong-key-4d1e" not in repr(make_client(credentials=wrong))


async def test_plain_http_is_refused_unless_the_host_is_listed(
    make_client: Callable[..., HttpClient], sim: HttpEndpointSimulator
) -> None:
    url = sim.add_flow("provision")

    with pytest.raises(VendorRejected, match="plain_http_hosts"):
        await make_client(plain_http_hosts=()).start(target(url), INPUTS, correlation_id=CID)

    assert sim.faults.requests == 0


# --- the callback -------------------------------------------------------------------------


def completed_by(arrived: Any) -> Any:
    """The state an arrived callback completes its run with, through the receiver's steps."""
    facts = callback.normalise(arrived.json())
    assert (facts.type, facts.subject) == ("http.run.succeeded", CID)
    event = CloudEvent(
        id="e1", source="http", type=facts.type, subject=CID, time=None, data=arrived.json()
    )
    found = callback.completion(event)
    assert found.keys == (CID,)
    return found.state


async def test_the_endpoints_signed_callback_completes_the_run(
    client: HttpClient, sim: HttpEndpointSimulator, inbox: CallbackInbox
) -> None:
    url = sim.add_flow("provision", mode="silent")
    sim.next_outcome("succeeded", {"ticket": "INC-7"})
    secret = callback.credential(HttpSource((WHSEC,)), SharedKeys(300, ()), CID)

    await client.start(target(url, callback_pointer="/callbackUrl"), INPUTS, correlation_id=CID,
                       callback_url=inbox.url, callback_secret=secret)  # fmt: skip
    arrived = await inbox.next()

    assert secret == callback.SIGNED
    verifier = callback.verifier(HttpSource((WHSEC,)), SharedKeys(300, ()))
    assert verifier is not None
    verifier.verify(arrived.headers, arrived.body)
    state = completed_by(arrived)
    assert (state.status, state.outputs) == ("succeeded", {"ticket": "INC-7"})
    assert "callbackToken" not in sim.runs["run-1"].body  # "signed" is no token to hand on
    await wait_until(lambda: sim.callbacks)
    assert sim.callbacks[0]["outcome"] == "sent"


async def test_an_endpoint_that_cannot_sign_calls_back_with_the_runs_own_token(
    session: aiohttp.ClientSession, inbox: CallbackInbox
) -> None:
    unsigned = HttpEndpointSimulator(API_KEY, None, run_duration_s=0.05)
    async with unsigned.serve():
        url = unsigned.add_flow("provision", mode="silent")
        rule = target(url, callback_pointer="/callbackUrl", callback_token_pointer="/callbackToken")
        token = callback.credential(HttpSource(), KEYS, CID)

        await HttpClient(session, api()).start(
            rule, INPUTS, correlation_id=CID, callback_url=inbox.url, callback_secret=token
        )
        arrived = await inbox.next()

    assert token == callback_tokens.sign(SIGNING_KEY, "http", CID)
    assert arrived.headers["Authorization"] == f"Bearer {token}"
    verifier = callback.verifier(HttpSource(), KEYS)
    assert verifier is not None
    verifier.verify(arrived.headers, arrived.body)
    assert completed_by(arrived).status == "succeeded"
