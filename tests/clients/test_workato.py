"""The Workato client against the Workato simulator over real HTTP on loopback."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from service import callback_tokens
from service.clients.base import Response
from service.errors import VendorRejected, VendorUnavailable
from service.vendors.runtoken import RunCallback, RunToken
from service.vendors.workato import callback as workato
from service.vendors.workato.client import WorkatoClient, answered
from service.vendors.workato.jobs import MAX_PAGES, job_run_state
from service.vendors.workato.settings import WorkatoApi
from service.vendors.workato.simulator import FAILURE, FUNCTION_STOPPED, WorkatoSimulator
from tests.clients.support import CallbackInbox, poll_state, wait_until

API_TOKEN = "workato-api-token-never-logged-91bd"
DEVELOPER_TOKEN = "workato-developer-token-never-logged-5c2e"
SIGNING_KEY = "workato-test-callback-signing-key-0042"
INPUTS = {"factSheetId": "95fbeddd", "name": "CRM"}
CID = "6f1c2a9e-3b7d-5e40-9a1f-0c2b4d6e8f10"  # a correlation id, as the starter makes them


@pytest.fixture
async def sim() -> AsyncIterator[WorkatoSimulator]:
    simulator = WorkatoSimulator(API_TOKEN, developer_token=DEVELOPER_TOKEN, run_duration_s=0.05)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def make_client(
    session: aiohttp.ClientSession, sim: WorkatoSimulator
) -> Callable[..., WorkatoClient]:
    def make(
        api_token: str = API_TOKEN, timeout_s: float = 5.0, developer_token: str = DEVELOPER_TOKEN
    ) -> WorkatoClient:
        settings = WorkatoApi(
            api_token=api_token,
            timeout_s=timeout_s,
            developer_api_url=sim.developer_api_url,
            developer_api_token=developer_token,
        )
        return WorkatoClient(session, settings)

    return make


@pytest.fixture
def client(make_client: Callable[..., WorkatoClient]) -> WorkatoClient:
    return make_client()


def endpoint(url: str, recipe_id: int | None = None) -> dict[str, Any]:
    return {"endpoint_url": url} | ({"recipe_id": recipe_id} if recipe_id else {})


# --- synchronous recipes -------------------------------------------------------------------


async def test_a_sync_recipe_answers_its_result_and_its_job_ends(
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
    [job] = sim.jobs_of(sim.endpoints["tickets"].recipe.id)
    assert (job.handle, job.status) == (run.run_id, "succeeded")


async def test_a_failed_sync_job_is_a_failed_run_not_an_error(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")

    run = await client.start(endpoint(url), {"forceFail": True}, correlation_id="corr-1")

    assert (run.status, run.vendor_state) == ("failed", "failed")
    assert run.detail == FAILURE
    assert run.run_id.startswith("j-")


# --- asynchronous recipes: the API recipe answers, its recipe function works -----------------


async def test_the_api_recipe_hands_the_work_to_its_function_and_its_job_ends(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox
) -> None:
    url = sim.add_endpoint("tickets")

    run = await client.start(
        endpoint(url), INPUTS, correlation_id=CID, callback_url=inbox.url,
        callback_secret=callback_tokens.sign(SIGNING_KEY, "workato", CID),  # as the starter
    )  # fmt: skip

    # The response ended the API recipe's job; the run is known by our correlation id.
    assert (run.status, run.vendor_state, run.run_id) == ("running", "accepted", CID)
    [answering] = sim.jobs_of(sim.endpoints["tickets"].recipe.id)
    assert answering.status == "succeeded"
    assert run.detail and answering.handle in run.detail
    [work] = sim.jobs_of(sim.function_id("tickets"))
    assert work.calling is answering
    assert work.title and CID in work.title
    # The function's last step is the callback, with the token it was handed.
    headers, body = await inbox.next()
    receiver = RunCallback(None, RunToken("workato", [SIGNING_KEY]))  # as sources.build makes it
    receiver.check(headers)
    assert receiver.verify(headers, body).scheme == "run-token"
    payload = orjson.loads(body)
    assert workato.normalise(payload).type == "workato.job.completed"
    assert (payload["jobId"], payload["correlationId"]) == (work.handle, CID)
    assert payload["outputs"] == {"echo": INPUTS}
    assert sim.calls[0]["callbackToken"] is True
    await wait_until(lambda: work.status == "succeeded")


async def test_a_failed_function_job_calls_back_failed_with_its_error(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox
) -> None:
    url = sim.add_endpoint("tickets")
    sim.next_outcome("failed")

    await client.start(
        endpoint(url), INPUTS, correlation_id="c", callback_url=inbox.url, callback_secret="t"
    )
    headers, body = await inbox.next()

    payload = orjson.loads(body)
    assert workato.normalise(payload).type == "workato.job.failed"
    assert payload["correlationId"] == "c"
    assert payload["error"] == FAILURE
    assert headers["Authorization"] == "Bearer t"


async def test_a_stopped_function_fails_the_api_recipes_job(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets")
    sim.stop_function("tickets")

    run = await client.start(endpoint(url), INPUTS, correlation_id="c")

    assert (run.status, run.detail) == ("failed", FUNCTION_STOPPED)
    assert sim.jobs_of(sim.function_id("tickets")) == []


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


# --- completion by polling the recipe function's jobs ----------------------------------------


async def test_without_a_recipe_id_status_asks_nothing(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets")
    run = await client.start(endpoint(url), INPUTS, correlation_id=CID)
    requests = sim.faults.requests

    state = await client.status(run.run_id, endpoint(url))

    assert (state.status, state.run_id) == ("running", CID)
    assert state.detail and "callback" in state.detail
    assert sim.faults.requests == requests  # nothing asked of Workato


@pytest.mark.parametrize("outcome", ["completed", "failed"])
async def test_status_follows_the_function_job_carrying_our_correlation_id(
    client: WorkatoClient, sim: WorkatoSimulator, outcome: str
) -> None:
    url = sim.add_endpoint("tickets")
    sim.next_outcome(outcome)
    target = endpoint(url, sim.function_id("tickets"))
    run = await client.start(target, INPUTS, correlation_id=CID)

    first = await client.status(run.run_id, target)
    final = await poll_state(lambda: client.status(run.run_id, target))

    assert (first.status, first.vendor_state) == ("running", "pending")
    [job] = sim.jobs_of(sim.function_id("tickets"))
    assert final.run_id == CID
    assert final.detail and job.handle in final.detail
    if outcome == "completed":
        assert (final.status, final.vendor_state) == ("succeeded", "succeeded")
    else:
        assert (final.status, final.vendor_state) == ("failed", "failed")
        assert FAILURE in final.detail


async def test_a_job_found_once_is_read_again_by_its_handle(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    sim.run_duration_s = 30.0  # the job stays pending throughout
    url = sim.add_endpoint("tickets")
    target = endpoint(url, sim.function_id("tickets"))
    await client.start(target, INPUTS, correlation_id=CID)
    for n in range(3):  # other runs of the same recipe, newer than ours
        await client.start(target, INPUTS, correlation_id=f"other-{n}")
    sim.jobs_page_size = 1  # ours is on the fourth page...
    assert MAX_PAGES < 4  # ...past what a poll reads
    assert (await client.status(CID, target)).detail == (
        f"no job of recipe {target['recipe_id']} carries correlation id {CID} yet"
    )

    sim.jobs_page_size = 2  # ours on the second page: found by listing
    assert (await client.status(CID, target)).vendor_state == "pending"
    requests = sim.faults.requests
    assert (await client.status(CID, target)).vendor_state == "pending"
    assert sim.faults.requests == requests + 1  # then by its handle


async def test_a_job_status_left_null_is_inferred_from_its_other_fields(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    sim.job_status_field = False
    url = sim.add_endpoint("tickets")
    sim.next_outcome("failed")
    target = endpoint(url, sim.function_id("tickets"))
    await client.start(target, INPUTS, correlation_id=CID)

    assert (await client.status(CID, target)).status == "running"
    final = await poll_state(lambda: client.status(CID, target))

    assert (final.status, final.vendor_state) == ("failed", "failed")


async def test_a_job_that_does_not_carry_our_id_leaves_the_run_running(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    sim.titles_carry_correlation = False
    url = sim.add_endpoint("tickets")
    target = endpoint(url, sim.function_id("tickets"))
    await client.start(target, INPUTS, correlation_id=CID)
    [job] = sim.jobs_of(sim.function_id("tickets"))
    await wait_until(lambda: job.status == "succeeded")

    state = await client.status(CID, target)

    assert state.status == "running"  # the deadline ends it (poller)
    assert state.detail and "carries correlation id" in state.detail
    assert client.run_deadline_s == WorkatoApi().run_deadline_s


async def test_a_recipe_id_without_a_developer_token_says_what_to_set(
    make_client: Callable[..., WorkatoClient], sim: WorkatoSimulator
) -> None:
    client = make_client(developer_token="")

    with pytest.raises(VendorRejected) as caught:
        await client.status(CID, {"endpoint_url": "https://x", "recipe_id": 7})

    assert "clients.workato.developer_api_token" in str(caught.value)
    assert "WORKATO_DEVELOPER_API_TOKEN" in str(caught.value)
    assert sim.faults.requests == 0


async def test_a_wrong_developer_token_is_rejected_without_leaking_it(
    make_client: Callable[..., WorkatoClient], sim: WorkatoSimulator
) -> None:
    client = make_client(developer_token="wrong-developer-token-do-not-echo")
    target = endpoint(sim.add_endpoint("tickets"), sim.function_id("tickets"))

    with pytest.raises(VendorRejected) as caught:
        await client.status(CID, target)

    assert caught.value.status == 401
    assert "Developer API token was refused" in str(caught.value)
    texts = [str(caught.value), repr(client), repr(client.jobs), repr(make_client())]
    assert not [t for t in texts if "wrong-developer" in t or DEVELOPER_TOKEN in t]


async def test_the_simulator_refuses_the_legacy_user_token_headers(
    session: aiohttp.ClientSession, sim: WorkatoSimulator
) -> None:
    sim.add_endpoint("tickets")
    jobs = f"{sim.developer_api_url}/recipes/{sim.function_id('tickets')}/jobs"
    legacy = {"x-user-email": "ops@example.com", "x-user-token": DEVELOPER_TOKEN}
    bearer = {"Authorization": f"Bearer {DEVELOPER_TOKEN}"}

    for headers, status in ((legacy, 401), ({**legacy, **bearer}, 401), (bearer, 200)):
        async with session.get(jobs, headers=headers) as response:
            assert response.status == status, headers
            if status == 401:
                assert "x-user-token" in (await response.json())["message"]


async def test_an_unknown_recipe_is_rejected_with_what_it_may_mean(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    target = endpoint(sim.add_endpoint("tickets"), 999999)

    with pytest.raises(VendorRejected) as caught:
        await client.status(CID, target)

    assert caught.value.status == 404
    assert "outside the API client's projects" in str(caught.value)


async def test_the_jobs_rate_limit_is_retryable_after_its_retry_after(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    sim.jobs_per_minute = 2
    target = endpoint(sim.add_endpoint("tickets"), sim.function_id("tickets"))
    for _ in range(2):
        await client.status(CID, target)

    with pytest.raises(VendorUnavailable) as caught:
        await client.status(CID, target)

    assert caught.value.retry_after_s is not None and 1 <= caught.value.retry_after_s <= 60


@pytest.mark.parametrize("status", [500, 503])
async def test_developer_api_outages_are_retryable(
    client: WorkatoClient, sim: WorkatoSimulator, status: int
) -> None:
    target = endpoint(sim.add_endpoint("tickets"), sim.function_id("tickets"))
    sim.faults.fail(status)

    with pytest.raises(VendorUnavailable):
        await client.status(CID, target)
    assert (await client.status(CID, target)).status == "running"


@pytest.mark.parametrize(
    ("job", "status", "vendor_state"),
    [
        ({"id": "j-1", "status": "succeeded"}, "succeeded", "succeeded"),
        ({"id": "j-1", "status": "Completed"}, "succeeded", "Completed"),
        ({"id": "j-1", "status": "failed", "error": {"step": 3}}, "failed", "failed"),
        ({"id": "j-1", "status": "pending", "completed_at": None}, "running", "pending"),
        ({"id": "j-1", "status": "processing"}, "running", "processing"),
        ({"id": "j-1", "status": None, "completed_at": None}, "running", "running"),
        ({"id": "j-1", "status": None, "completed_at": "2026-01-01T00:00:00Z"}, "succeeded",
         "succeeded"),
        ({"id": None, "status": None, "completed_at": "x", "is_error": True}, "failed", "failed"),
        ({"status": "weird", "completed_at": "x", "error": "boom"}, "failed", "weird"),
        ({}, "running", "running"),
    ],
)  # fmt: skip
def test_jobs_are_read_tolerantly(job: dict[str, Any], status: str, vendor_state: str) -> None:
    state = job_run_state(job, CID)
    assert (state.status, state.vendor_state, state.run_id) == (status, vendor_state, CID)
    if status == "failed" and job.get("error"):
        assert state.detail and ("boom" in state.detail or '{"step":3}' in state.detail)


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


async def test_the_api_platform_also_takes_the_token_as_basic_auth(
    session: aiohttp.ClientSession, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    body = {"correlationId": "c", "inputs": {}}
    for password, status in ((API_TOKEN, 200), ("wrong", 401)):
        basic = base64.b64encode(f"api-token:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == status


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


async def test_a_500_saying_the_parameters_were_bad_is_not_retried(
    client: WorkatoClient, sim: WorkatoSimulator
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")

    with pytest.raises(VendorRejected) as caught:  # the simulator: no correlationId
        await client.start(endpoint(url), INPUTS, correlation_id="")

    assert caught.value.status == 500
    assert "parameters" in str(caught.value)
    assert sim.calls[0]["valid"] is False


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_server_faults_and_throttling_are_retryable(
    client: WorkatoClient, sim: WorkatoSimulator, status: int
) -> None:
    url = sim.add_endpoint("tickets", mode="sync")
    sim.faults.retry_after_s = 9
    sim.faults.fail(status)

    with pytest.raises(VendorUnavailable) as caught:
        await client.start(endpoint(url), INPUTS, correlation_id="c")

    assert caught.value.retry_after_s == (9.0 if status == 429 else None)
    assert (await client.start(endpoint(url), INPUTS, correlation_id="c")).terminal


@pytest.mark.parametrize(
    ("status", "body", "permanent"),
    [
        (500, b'{"message": "Missing or invalid parameters"}', True),
        (500, b'{"error": "Invalid request params"}', True),
        (503, b"Request PARAMETER 'inputs' is required", True),
        (500, b'{"error": "validation failed: name"}', True),
        (500, b'{"message": "Internal server error"}', False),
        (500, b"", False),
        (502, b"<html>Bad Gateway</html>", False),
        (500, b"paramount outage", False),
    ],
)
def test_a_5xx_is_permanent_only_when_its_body_blames_the_parameters(
    client: WorkatoClient, status: int, body: bytes, permanent: bool
) -> None:
    error = client.translate("POST /acme/bridge-v1/x", Response(status, {}, body))
    assert isinstance(error, VendorRejected if permanent else VendorUnavailable)


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
        (b'{"status": "pending", "jobId": "j-1"}', "running", "corr"),
        (b'{"status": "accepted", "jobId": "j-2"}', "running", "corr"),
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
