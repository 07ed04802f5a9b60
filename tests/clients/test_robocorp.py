"""The Robocorp client against the simulated Control Room, over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from service.errors import Unauthorized, VendorRejected, VendorUnavailable
from service.vendors.robocorp import callback as robocorp
from service.vendors.robocorp.client import RobocorpClient, started_run_id
from service.vendors.robocorp.settings import RobocorpApi
from service.vendors.robocorp.simulator import RobocorpSimulator
from service.vendors.signatures import BodyHmac
from tests.clients.support import CallbackInbox, poll_state, wait_until

KEY = "rc-wskey-7d1e0c9b5a"
WORKSPACE = "ws-7c1d"
SECRET = "per-run-callback-secret-93ab"
AWKWARD = {
    "factSheet": "a b&c=d",
    "city": "Zürich \u2013 東京 €",
    "quote": 'say "hi"\n\\',
    "nested": {"list": [1, 2.5, None, True], "empty": {}},
    "count": 3,
}


@pytest.fixture
async def sim() -> AsyncIterator[RobocorpSimulator]:
    simulator = RobocorpSimulator(api_key=KEY, workspace_id=WORKSPACE, run_duration_s=0.2)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def make_client(
    sim: RobocorpSimulator, session: aiohttp.ClientSession
) -> Callable[..., RobocorpClient]:
    def make(
        api_key: str = KEY, timeout_s: float = 2.0, workspace: str = WORKSPACE
    ) -> RobocorpClient:
        settings = RobocorpApi(
            base_url=f"{sim.base_url}/api/v1/",
            api_key=api_key,
            workspace_id=workspace,
            timeout_s=timeout_s,
        )
        return RobocorpClient(session, settings)

    return make


@pytest.fixture
def client(make_client: Callable[..., RobocorpClient]) -> RobocorpClient:
    return make_client()


@pytest.fixture
def target(sim: RobocorpSimulator) -> dict[str, str]:
    return {"process_id": sim.add_process("Update fact sheet")}


async def test_start_sends_the_inputs_as_one_payload_and_the_callback(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str]
) -> None:
    run = await client.start(
        target,
        AWKWARD,
        correlation_id="corr 1",
        callback_url="http://cb/x?a=1",
        callback_secret=SECRET,
    )
    assert (run.vendor, run.status, run.vendor_state) == ("robocorp", "pending", "new")
    recorded = sim.runs[run.run_id]
    assert recorded.payloads == [{**AWKWARD, "correlationId": "corr 1"}]
    assert recorded.callback == {
        "url": "http://cb/x?a=1",
        "secret": SECRET,
        "callback_events": ["completed", "unresolved"],
    }


async def test_no_callback_url_asks_for_no_callback(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str]
) -> None:
    run = await client.start(target, {}, correlation_id="c-1")
    assert sim.runs[run.run_id].callback is None


async def test_no_callback_secret_asks_for_no_callback(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str]
) -> None:
    # Control Room requires url, secret and callback_events: without a secret, poll.
    run = await client.start(target, {}, correlation_id="c-1", callback_url="http://cb/x")
    assert sim.runs[run.run_id].callback is None


async def test_a_completed_run_succeeds(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str]
) -> None:
    sim.run_duration_s = 0.8  # a 0.2 s Queued window to observe
    run = await client.start(target, {}, correlation_id="c-1")
    assert (await client.status(run.run_id, target)).status == "pending"
    running = await poll_state(
        lambda: client.status(run.run_id, target), lambda s: s.vendor_state == "in_progress"
    )
    assert running.status == "running"
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert (state.status, state.vendor_state, state.detail) == ("succeeded", "completed", None)
    assert state.outputs["duration_s"] > 0


@pytest.mark.parametrize("how", ["next_outcome", "forceFail"])
async def test_an_unresolved_run_fails(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str], how: str
) -> None:
    if how == "next_outcome":
        sim.next_outcome("unresolved")
    inputs = {"forceFail": True} if how == "forceFail" else {}
    run = await client.start(target, inputs, correlation_id="c-1")
    state = await poll_state(lambda: client.status(run.run_id, target))
    assert (state.status, state.vendor_state) == ("failed", "unresolved")
    assert state.detail and "work items failed" in state.detail


@pytest.mark.parametrize("outcome", ["completed", "unresolved"])
async def test_the_signed_callback_verifies_and_normalises(
    sim: RobocorpSimulator,
    client: RobocorpClient,
    target: dict[str, str],
    inbox: CallbackInbox,
    outcome: str,
) -> None:
    sim.next_outcome(outcome)
    run = await client.start(
        target, {}, correlation_id="c-1", callback_url=inbox.url, callback_secret=SECRET
    )
    callback = await inbox.next()
    BodyHmac("x-rc-signature", "hex", [SECRET]).verify(callback.headers, callback.body)
    with pytest.raises(Unauthorized):
        BodyHmac("x-rc-signature", "hex", ["other"]).verify(callback.headers, callback.body)
    facts = robocorp.normalise(orjson.loads(callback.body))
    assert facts.type == f"robocorp.process_run.{outcome}"
    assert (facts.subject, facts.source) == (run.run_id, f"robocorp:{WORKSPACE}")
    payload = orjson.loads(callback.body)["payload"]
    assert payload == {
        "workspaceId": WORKSPACE,
        "processId": target["process_id"],
        "processRunId": run.run_id,
        "state": outcome,
    }
    assert (await poll_state(lambda: client.status(run.run_id, target))).vendor_state == outcome


async def test_a_dropped_callback_still_completes_by_polling(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str], inbox: CallbackInbox
) -> None:
    sim.faults.drop_callbacks = True
    run = await client.start(
        target, {}, correlation_id="c-1", callback_url=inbox.url, callback_secret=SECRET
    )
    assert (await poll_state(lambda: client.status(run.run_id, target))).status == "succeeded"
    await wait_until(lambda: bool(sim.callbacks))
    assert sim.callbacks == [
        {"runId": run.run_id, "event": "process_run.completed", "dropped": True}
    ]
    assert inbox.received.empty()


async def test_a_wrong_key_is_rejected_for_good_with_the_code(
    make_client: Callable[..., RobocorpClient], target: dict[str, str]
) -> None:
    wrong = "rc-wskey-wrong-000"
    with pytest.raises(VendorRejected, match="unauthorized") as caught:
        await make_client(api_key=wrong).start(target, {}, correlation_id="c-1")
    assert caught.value.status == 401
    assert wrong not in str(caught.value)


async def test_an_unknown_process_is_rejected_with_the_code(client: RobocorpClient) -> None:
    with pytest.raises(VendorRejected, match="forbidden: process nope") as caught:
        await client.start({"process_id": "nope"}, {}, correlation_id="c-1")
    assert caught.value.status == 403  # the spec lists 400, 403, 409 for a start


async def test_the_target_workspace_overrides_the_settings(
    make_client: Callable[..., RobocorpClient], target: dict[str, str]
) -> None:
    other = make_client(workspace="ws-other")
    with pytest.raises(VendorRejected, match="forbidden"):
        await other.start(target, {}, correlation_id="c-1")
    run = await other.start({**target, "workspace_id": WORKSPACE}, {}, correlation_id="c-1")
    assert (await other.status(run.run_id, {"workspace_id": WORKSPACE})).run_id == run.run_id


async def test_a_target_needs_a_process_and_a_workspace(
    make_client: Callable[..., RobocorpClient], target: dict[str, str]
) -> None:
    with pytest.raises(VendorRejected, match="process_id"):
        await make_client().start({}, {}, correlation_id="c-1")
    with pytest.raises(VendorRejected, match="workspace_id"):
        await make_client(workspace="").start(target, {}, correlation_id="c-1")


@pytest.mark.parametrize("doc", [{"started": False}, {"started": True}, None])
def test_a_start_without_a_run_is_rejected(doc: Any) -> None:
    with pytest.raises(VendorRejected):
        started_run_id(doc)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_faults_are_retryable(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str], status: int
) -> None:
    sim.faults.fail(status)
    # The injected body's "error" is a string, not {code, message}: it is kept as it came.
    with pytest.raises(VendorUnavailable, match=f'answered {status}: {{"error":"injected'):
        await client.start(target, {}, correlation_id="c-1")
    assert sim.runs == {}


async def test_429_is_retryable_after_the_given_delay(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str]
) -> None:
    run = await client.start(target, {}, correlation_id="c-1")
    sim.faults.retry_after_s = 4
    sim.faults.fail(429)
    with pytest.raises(VendorUnavailable) as caught:
        await client.status(run.run_id, target)
    assert caught.value.retry_after_s == 4.0


async def test_a_hanging_control_room_times_out_as_retryable(
    sim: RobocorpSimulator, make_client: Callable[..., RobocorpClient], target: dict[str, str]
) -> None:
    sim.faults.hang()
    with pytest.raises(VendorUnavailable, match="timed out"):
        await make_client(timeout_s=0.2).start(target, {}, correlation_id="c-1")


async def test_secrets_stay_out_of_reprs_and_errors(
    sim: RobocorpSimulator, client: RobocorpClient, target: dict[str, str]
) -> None:
    settings = RobocorpApi(base_url=sim.base_url, api_key=KEY, workspace_id=WORKSPACE)
    assert KEY not in repr(settings)
    assert KEY not in repr(client)
    for fault in (None, 503):
        if fault:
            sim.faults.fail(fault)
        with pytest.raises((VendorRejected, VendorUnavailable)) as caught:
            await client.start(
                {"process_id": "nope"},
                {},
                correlation_id="c",
                callback_url="http://cb",
                callback_secret=SECRET,
            )
        assert KEY not in str(caught.value)
        assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("missing", "call"),
    [("Processes.trigger_processes", "start"), ("Processes.read_processes", "status")],
)
async def test_a_key_without_a_permission_is_rejected_naming_what_it_needs(
    sim: RobocorpSimulator,
    client: RobocorpClient,
    target: dict[str, str],
    missing: str,
    call: str,
) -> None:
    run = await client.start(target, {}, correlation_id="c-1")
    sim.permissions = sim.permissions - {missing}  # reading a run takes read_processes
    with pytest.raises(VendorRejected) as caught:
        if call == "start":
            await client.start(target, {}, correlation_id="c-2")
        else:
            await client.status(run.run_id, target)
    assert caught.value.status == 403
    assert f"lacks the permission {missing}" in str(caught.value)
    assert "needs Processes.trigger_processes to start runs" in str(caught.value)
