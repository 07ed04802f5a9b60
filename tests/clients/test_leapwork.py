"""The Leapwork client against the simulated controller, over real HTTP on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import orjson
import pytest

from service import callback_tokens
from service.errors import VendorRejected, VendorUnavailable
from service.vendors.leapwork import callback as leapwork
from service.vendors.leapwork.client import LeapworkClient
from service.vendors.leapwork.settings import LeapworkApi
from service.vendors.leapwork.simulator import LeapworkSimulator
from service.vendors.runtoken import RunToken
from tests.clients.support import CallbackInbox, poll_state, wait_until

KEY = "Mo87Nc4qDAtzJNDb"
TOKEN = "leapwork-callback-token-5e1f"
SIGNING_KEY = "leapwork-test-callback-signing-key-0042"
AWKWARD = {
    "factSheet": "a b&c=d",
    "plus": "1+1 %20 #frag ?q",
    "city": "Zürich \u2013 東京 €",
    "empty": "",
    "count": 3,
    "flag": True,
}


@pytest.fixture
async def sim() -> AsyncIterator[LeapworkSimulator]:
    simulator = LeapworkSimulator(access_key=KEY, run_duration_s=0.2)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def make_client(
    sim: LeapworkSimulator, session: aiohttp.ClientSession
) -> Callable[..., LeapworkClient]:
    def make(access_key: str = KEY, timeout_s: float = 2.0) -> LeapworkClient:
        settings = LeapworkApi(base_url=sim.base_url, access_key=access_key, timeout_s=timeout_s)
        return LeapworkClient(session, settings)

    return make


@pytest.fixture
def client(make_client: Callable[..., LeapworkClient]) -> LeapworkClient:
    return make_client()


async def test_start_sends_every_variable_url_encoded(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke")}
    callback_url = "http://127.0.0.1:9/callbacks/leapwork?a=1&b=2"
    run = await client.start(
        target, AWKWARD, correlation_id="corr 1", callback_url=callback_url, callback_secret=TOKEN
    )
    assert (run.vendor, run.status) == ("leapwork", "pending")
    recorded = sim.runs[run.run_id]
    assert recorded.variables == {
        "factSheet": "a b&c=d",
        "plus": "1+1 %20 #frag ?q",
        "city": "Zürich \u2013 東京 €",
        "empty": "",
        "count": "3",
        "flag": "true",
        "correlationId": "corr 1",
        "callbackUrl": callback_url,
        "callbackToken": TOKEN,
    }
    # Spaces as %20 and "+" as %2B: unambiguous for .NET's query parser.
    assert "factSheet=a%20b%26c%3Dd" in recorded.query
    assert "plus=1%2B1%20%2520%20%23frag%20%3Fq" in recorded.query


async def test_a_passing_run_succeeds_with_counts(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke", ["Flow A", "Flow B"])}
    run = await client.start(target, {}, correlation_id="c-1")
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert (state.status, state.vendor_state) == ("succeeded", "Finished")
    assert state.outputs == {"passed": 2, "failed": 0, "total": 2}
    assert state.detail is None


async def test_a_failing_flow_fails_the_run_and_is_named(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke", ["Login", "Checkout"])}
    sim.next_outcome("Passed", "Error")
    run = await client.start(target, {}, correlation_id="c-1")
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert state.status == "failed"
    assert state.outputs == {"passed": 1, "failed": 1, "total": 2}
    assert state.detail == "failed flows: Checkout (Error)"


async def test_the_force_fail_variable_fails_the_run(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke")}
    run = await client.start(target, {"forceFail": True}, correlation_id="c-1")
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert state.status == "failed"
    assert state.detail == "failed flows: Flow A (Failed)"


async def test_queued_then_executing_then_done(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    sim.run_duration_s = 0.8  # a 0.2 s Queued window to observe
    target = {"schedule_id": sim.add_schedule("Smoke")}
    run = await client.start(target, {}, correlation_id="c-1")
    first = await client.status(run.run_id, target)
    assert (first.status, first.vendor_state) == ("pending", "Queued")
    executing = await poll_state(
        lambda: client.status(run.run_id, target), lambda s: s.vendor_state == "Executing"
    )
    assert executing.status == "running"
    assert (await poll_state(lambda: client.status(run.run_id, target))).status == "succeeded"


async def test_the_docs_spellings_pass_and_run_items_ids_are_understood(
    sim: LeapworkSimulator, client: LeapworkClient, session: aiohttp.ClientSession
) -> None:
    sim.pass_status, sim.item_ids_field = "Pass", "RunItemsIds"
    target = {"schedule_id": sim.add_schedule("Smoke", ["Flow A", "Flow B"])}
    run = await client.start(target, {}, correlation_id="c-1")
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert (state.status, state.outputs["passed"]) == ("succeeded", 2)
    # The simulator answers like .NET, "$id" keys and all; none reach the RunState.
    url = f"{sim.base_url}/api/v4/run/{run.run_id}/runItemIds"
    async with session.get(url, headers={"AccessKey": KEY}) as response:
        assert "$id" in await response.json()
    assert "$id" not in orjson.dumps(state.outputs).decode()


async def test_a_late_item_keeps_a_finished_run_running(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    sim.late_item_s = 0.5
    target = {"schedule_id": sim.add_schedule("Smoke")}
    run = await client.start(target, {}, correlation_id="c-1")
    finished = await poll_state(
        lambda: client.status(run.run_id, target), lambda s: s.vendor_state == "Finished"
    )
    assert finished.status == "running"
    assert finished.outputs["total"] == 0
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert state.status == "succeeded"
    assert state.outputs == {"passed": 1, "failed": 0, "total": 1}


async def test_the_flow_calls_back_with_its_runs_own_token(
    sim: LeapworkSimulator, client: LeapworkClient, inbox: CallbackInbox
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke", ["Flow A", "Flow B"])}
    sim.next_outcome("Failed")
    token = callback_tokens.sign(SIGNING_KEY, "leapwork", "fs-42")  # as the starter makes it
    run = await client.start(
        target, {}, correlation_id="fs-42", callback_url=inbox.url, callback_secret=token
    )
    callback = await inbox.next()
    credential = RunToken("leapwork", [SIGNING_KEY]).verify(callback.headers, callback.body)
    assert credential.scheme == "run-token"
    facts = leapwork.normalise(orjson.loads(callback.body))
    assert (facts.type, facts.subject) == ("leapwork.run.finished", run.run_id)
    body = orjson.loads(callback.body)
    assert body["correlationId"] == "fs-42"
    assert body["scheduleId"] == target["schedule_id"]
    assert (body["status"], body["result"]) == ("Finished", "Failed")
    assert body["outputs"] == {"passed": 1, "failed": 1, "total": 2}
    assert (await poll_state(lambda: client.status(run.run_id, target))).status == "failed"


async def test_a_dropped_callback_still_completes_by_polling(
    sim: LeapworkSimulator, client: LeapworkClient, inbox: CallbackInbox
) -> None:
    sim.faults.drop_callbacks = True
    target = {"schedule_id": sim.add_schedule("Smoke")}
    run = await client.start(
        target, {}, correlation_id="c-1", callback_url=inbox.url, callback_secret=TOKEN
    )
    assert (await poll_state(lambda: client.status(run.run_id, target))).status == "succeeded"
    await wait_until(lambda: bool(sim.callbacks))
    assert sim.callbacks == [{"runId": run.run_id, "url": inbox.url, "dropped": True}]
    assert inbox.received.empty()


async def test_a_wrong_access_key_is_rejected_for_good(
    sim: LeapworkSimulator, make_client: Callable[..., LeapworkClient]
) -> None:
    wrong = "WrongKey12345678"
    target = {"schedule_id": sim.add_schedule("Smoke")}
    with pytest.raises(VendorRejected) as caught:
        await make_client(access_key=wrong).start(target, {}, correlation_id="c-1")
    assert caught.value.status == 401
    assert wrong not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "inputs", "status"),
    [
        ({"schedule_id": "0d9e4c7a-5b1f-4e2d-8c3b-a6f7e8d9c0b1"}, {}, 404),  # no such schedule
        (None, {"bad name": "x"}, 400),
        (None, {"1st": "x"}, 400),
    ],
)
async def test_refusals_are_permanent(
    sim: LeapworkSimulator,
    client: LeapworkClient,
    target: dict[str, str] | None,
    inputs: dict[str, str],
    status: int,
) -> None:
    target = target or {"schedule_id": sim.add_schedule("Smoke")}
    with pytest.raises(VendorRejected) as caught:
        await client.start(target, inputs, correlation_id="c-1")
    assert caught.value.status == status


async def test_a_target_without_a_schedule_is_rejected(client: LeapworkClient) -> None:
    with pytest.raises(VendorRejected, match="schedule_id"):
        await client.start({}, {}, correlation_id="c-1")


async def test_an_unknown_run_is_rejected(client: LeapworkClient) -> None:
    with pytest.raises(VendorRejected) as caught:
        await client.status(str(uuid.uuid4()), {})
    assert caught.value.status == 404


async def test_ids_that_are_not_guids_are_rejected_before_any_call(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    # Leapwork's API takes schedule and run ids only as GUIDs (contracts/leapwork.json).
    with pytest.raises(VendorRejected, match="schedule_id 'Smoke' is not a Leapwork id"):
        await client.start({"schedule_id": "Smoke"}, {}, correlation_id="c-1")
    with pytest.raises(VendorRejected, match="run id '1/../x' is not a Leapwork id"):
        await client.status("1/../x", {})
    assert sim.faults.requests == 0


@pytest.mark.parametrize("status", [500, 503, 446, 455])
async def test_server_faults_are_retryable(
    sim: LeapworkSimulator, client: LeapworkClient, status: int
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke")}
    sim.faults.fail(status)
    with pytest.raises(VendorUnavailable, match=str(status)):
        await client.start(target, {}, correlation_id="c-1", callback_secret=TOKEN)
    assert sim.runs == {}


async def test_429_is_retryable_after_the_given_delay(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    sim.faults.retry_after_s = 7
    sim.faults.fail(429)
    with pytest.raises(VendorUnavailable) as caught:
        await client.status(str(uuid.uuid4()), {})
    assert caught.value.retry_after_s == 7.0


async def test_a_hanging_controller_times_out_as_retryable(
    sim: LeapworkSimulator, make_client: Callable[..., LeapworkClient]
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke")}
    sim.faults.hang()
    with pytest.raises(VendorUnavailable, match="timed out"):
        await make_client(timeout_s=0.2).start(target, {}, correlation_id="c-1")


async def test_a_schedule_already_running_is_retryable(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke")}
    first = await client.start(target, {}, correlation_id="c-1")
    with pytest.raises(VendorUnavailable, match="410") as caught:
        await client.start(target, {}, correlation_id="c-2", callback_secret=TOKEN)
    assert TOKEN not in str(caught.value)
    assert list(sim.runs) == [first.run_id]
    await poll_state(lambda: client.status(first.run_id, target))
    again = await client.start(target, {}, correlation_id="c-2")
    assert again.run_id != first.run_id


async def test_secrets_stay_out_of_reprs_and_errors(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    settings = LeapworkApi(base_url=sim.base_url, access_key=KEY)
    assert KEY not in repr(settings)
    assert KEY not in repr(client)
    target = {"schedule_id": str(uuid.uuid4())}  # no such schedule
    for fault in (None, 503):
        if fault:
            sim.faults.fail(fault)
        with pytest.raises((VendorRejected, VendorUnavailable)) as caught:
            await client.start(target, {}, correlation_id="c", callback_secret=TOKEN)
        assert KEY not in str(caught.value)
        assert TOKEN not in str(caught.value)
