"""The Workato client against the Workato simulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from service.clients.base import Response
from service.clients.workato import WorkatoClient, answered
from service.errors import VendorRejected, VendorUnavailable
from service.receiver import normalise
from service.receiver.signatures import BearerToken
from service.settings import WorkatoApi
from service.simulators.workato import FAILURE, WorkatoSimulator
from tests.clients.support import CallbackInbox, wait_until

API_TOKEN = "workato-api-token-never-logged-91bd"
CALLBACK_TOKEN = "workato-callback-token-3e7f"
INPUTS = {"factSheetId": "95fbeddd", "name": "CRM"}


@pytest.fixture
async def sim() -> AsyncIterator[WorkatoSimulator]:
    simulator = WorkatoSimulator(API_TOKEN, run_duration_s=0.05)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def make_client(session: aiohttp.ClientSession) -> Callable[..., WorkatoClient]:
    def make(api_token: str = API_TOKEN, timeout_s: float = 5.0) -> WorkatoClient:
        return WorkatoClient(session, WorkatoApi(api_token=api_token, timeout_s=timeout_s))

    return make


@pytest.fixture
def client(make_client: Callable[..., WorkatoClient]) -> WorkatoClient:
    return make_client()


def endpoint(url: str) -> dict[str, Any]:
    return {"endpoint_url": url}


# --- synchronous recipes -------------------------------------------------------------------


async def test_a_sync_recipe_answers_its_result(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    sim.next_outcome("completed", {"ticket": "INC-1001"})

    run = await client.start(endpoint(url), INPUTS, correlation_id="corr-1")

    assert run.terminal
    assert (run.status, run.vendor_state) == ("succeeded", "completed")
    assert run.outputs == {"ticket": "INC-1001"}
    assert run.run_id.startswith("j-")
    [call] = sim.calls
    assert call["correlationId"] == "corr-1"
    assert call["inputs"] == INPUTS
    assert call["callbackUrl"] is None
    assert url.startswith(f"{sim.base_url}/acme/bridge-v1/")


async def test_a_failed_sync_job_is_a_failed_run_not_an_error(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")

    run = await client.start(endpoint(url), {"forceFail": True}, correlation_id="corr-1")

    assert (run.status, run.vendor_state) == ("failed", "failed")
    assert run.detail == FAILURE
    assert run.run_id.startswith("j-")


# --- asynchronous recipes ------------------------------------------------------------------


async def test_an_async_recipe_calls_back_with_our_documented_body(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox
) -> None:
    url = sim.add_endpoint("tickets")

    run = await client.start(
        endpoint(url),
        INPUTS,
        correlation_id="corr-7",
        callback_url=inbox.url,
        callback_secret=CALLBACK_TOKEN,
    )
    assert (run.status, run.vendor_state) == ("running", "accepted")
    headers, body = await asyncio.wait_for(inbox.received.get(), 5)

    BearerToken([CALLBACK_TOKEN]).verify(headers, body)
    payload = orjson.loads(body)
    facts = normalise.workato(payload)
    assert facts.type == "workato.job.completed"
    assert facts.subject == run.run_id
    assert facts.time == payload["completedAt"]
    assert payload["correlationId"] == "corr-7"
    assert payload["outputs"] == {"echo": INPUTS}
    assert sim.calls[0]["callbackUrl"] == inbox.url
    assert sim.calls[0]["callbackToken"] is True


async def test_a_failed_async_job_calls_back_failed_with_its_error(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox
) -> None:
    url = sim.add_endpoint("tickets")
    sim.next_outcome("failed")

    run = await client.start(
        endpoint(url), INPUTS, correlation_id="c", callback_url=inbox.url, callback_secret="t"
    )
    headers, body = await asyncio.wait_for(inbox.received.get(), 5)

    payload = orjson.loads(body)
    assert normalise.workato(payload).type == "workato.job.failed"
    assert payload["jobId"] == run.run_id
    assert payload["error"] == FAILURE
    assert headers["Authorization"] == "Bearer t"


async def test_status_says_completion_comes_by_callback(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets")
    run = await client.start(endpoint(url), INPUTS, correlation_id="c")
    requests = sim.faults.requests

    state = await client.status(run.run_id, endpoint(url))

    assert (state.status, state.run_id) == ("running", run.run_id)
    assert state.detail and "callback" in state.detail
    assert sim.faults.requests == requests  # nothing asked of Workato


async def test_dropped_callbacks_never_arrive(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox
) -> None:
    url = sim.add_endpoint("tickets")
    sim.faults.drop_callbacks = True

    await client.start(endpoint(url), INPUTS, correlation_id="c", callback_url=inbox.url)
    [record] = await wait_until(lambda: sim.callbacks)

    assert record["outcome"] == "dropped"
    assert inbox.received.empty()


async def test_no_callback_is_sent_when_none_was_given(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets")

    await client.start(endpoint(url), INPUTS, correlation_id="c")
    [record] = await wait_until(lambda: sim.callbacks)

    assert record["outcome"] == "no-callback"
    assert sim.calls[0]["callbackUrl"] is None


async def test_an_empty_2xx_is_a_run_awaiting_its_callback(
    client: WorkatoClient, inbox: CallbackInbox
) -> None:
    # The inbox stands in for an endpoint that answers an empty 200.
    run = await client.start(endpoint(inbox.url), INPUTS, correlation_id="corr-9")

    assert (run.status, run.run_id) == ("running", "corr-9")
    headers, body = inbox.received.get_nowait()
    assert headers["API-TOKEN"] == API_TOKEN
    assert orjson.loads(body) == {"correlationId": "corr-9", "inputs": INPUTS}


# --- failures ------------------------------------------------------------------------------


async def test_a_wrong_token_is_rejected_without_leaking_it(
    make_client: Callable[..., WorkatoClient], sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets")
    client = make_client(api_token="wrong-token-do-not-echo")

    with pytest.raises(VendorRejected) as caught:
        await client.start(endpoint(url), INPUTS, correlation_id="c")

    assert caught.value.status == 401
    assert "API-TOKEN" in str(caught.value)
    assert "wrong-token-do-not-echo" not in str(caught.value)
    assert "wrong-token-do-not-echo" not in repr(client)
    assert API_TOKEN not in repr(make_client())


@pytest.mark.parametrize("stopped", [False, True], ids=["unknown-endpoint", "stopped-recipe"])
async def test_404_means_a_wrong_url_or_a_stopped_recipe(
    client: WorkatoClient, sim: WorkatoSimulator, stopped: bool
) -> None:
    url = sim.add_endpoint("tickets")
    if stopped:
        sim.stop_recipe("tickets")
    else:
        url += "-typo"

    with pytest.raises(VendorRejected) as caught:
        await client.start(endpoint(url), INPUTS, correlation_id="c")

    assert caught.value.status == 404
    assert "wrong endpoint URL, or the recipe is not running" in str(caught.value)


async def test_a_restarted_recipe_answers_again(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets")
    sim.stop_recipe("tickets")
    sim.start_recipe("tickets")
    assert (await client.start(endpoint(url), INPUTS, correlation_id="c")).status == "running"


async def test_500_means_bad_parameters_and_is_not_retried(
    session: aiohttp.ClientSession, client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    async with session.post(url, json={"inputs": {}}, headers={"api-token": API_TOKEN}) as r:
        assert r.status == 500  # the simulator: no correlationId
    sim.faults.fail(500)

    with pytest.raises(VendorRejected) as caught:
        await client.start(endpoint(url), INPUTS, correlation_id="c")

    assert caught.value.status == 500
    assert "parameters" in str(caught.value)


@pytest.mark.parametrize("status", [502, 503, 504, 429])
async def test_gateway_errors_and_throttling_are_retryable(
    client: WorkatoClient, sim: WorkatoSimulator, status: int
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    sim.faults.retry_after_s = 9
    sim.faults.fail(status)

    with pytest.raises(VendorUnavailable) as caught:
        await client.start(endpoint(url), INPUTS, correlation_id="c")

    assert caught.value.retry_after_s == (9.0 if status == 429 else None)
    assert (await client.start(endpoint(url), INPUTS, correlation_id="c")).terminal


async def test_a_hanging_endpoint_times_out_as_unavailable(
    make_client: Callable[..., WorkatoClient], sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    sim.faults.hang()

    with pytest.raises(VendorUnavailable, match="timed out"):
        await make_client(timeout_s=0.3).start(endpoint(url), INPUTS, correlation_id="c")


@pytest.mark.parametrize(
    "target", [{}, {"endpoint_url": "apim.workato.com/x"}, {"endpoint_url": 3}]
)
async def test_a_target_without_an_absolute_url_is_rejected(
    client: WorkatoClient, target: dict[str, Any]
) -> None:
    with pytest.raises(VendorRejected, match="endpoint_url"):
        await client.start(target, INPUTS, correlation_id="c")


async def test_no_error_text_carries_the_api_token(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    texts = [repr(client), repr(WorkatoApi(api_token=API_TOKEN))]
    for status in (401, 404, 500, 503):
        sim.faults.fail(status)
        with pytest.raises((VendorRejected, VendorUnavailable)) as caught:
            await client.start(endpoint(url), INPUTS, correlation_id="c")
        texts.append(str(caught.value))

    assert not [text for text in texts if API_TOKEN in text]


@pytest.mark.parametrize(
    ("body", "status", "run_id"),
    [
        (b'{"status": "succeeded", "jobId": 42, "outputs": {"a": 1}}', "succeeded", "42"),
        (b'{"status": "FAILED", "error": {"step": 2}}', "failed", "corr"),
        (b'{"status": "pending", "jobId": "j-1"}', "running", "j-1"),
        (b'{"status": "running"}', "running", "corr"),
        (b'{"ticket": "INC-1"}', "running", "corr"),
        (b"OK", "running", "corr"),
        (b"", "running", "corr"),
    ],
)
def test_recipe_answers_are_read_tolerantly(body: bytes, status: str, run_id: str) -> None:
    state = answered(Response(200, {}, body), "corr")
    assert (state.status, state.run_id) == (status, run_id)
    if status == "failed":
        assert state.detail == '{"step":2}'
