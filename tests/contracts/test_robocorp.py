"""Robocorp Control Room: our client, the simulator and the fixture against
../shared/contracts/robocorp.json (Control Room's OpenAPI and webhook docs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from service.errors import VendorRejected
from service.vendors.robocorp.client import RobocorpClient
from service.vendors.robocorp.settings import RobocorpApi
from service.vendors.robocorp.simulator import RobocorpSimulator
from tests.clients.support import CallbackInbox, poll_state
from tests.contracts.contract import contract, delivery_problems
from tests.contracts.recording import Recorder, operation_problems, outside_contract

KEY = "contract-rc-wskey"
WORKSPACE = "ws-contract"
SECRET = "contract-per-run-secret"
OPERATIONS = ["StartProcessRun", "GetProcessRun"]  # all our client calls
PER_RUN = "per-run callback"  # the contract's name of the per-run callback begins so


@pytest.fixture
async def sim() -> AsyncIterator[RobocorpSimulator]:
    simulator = RobocorpSimulator(KEY, WORKSPACE, run_duration_s=0.04)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(session: aiohttp.ClientSession, sim: RobocorpSimulator) -> RobocorpClient:
    settings = RobocorpApi(base_url=f"{sim.base_url}/api/v1", api_key=KEY, workspace_id=WORKSPACE)
    return RobocorpClient(session, settings)


async def exercise(client: RobocorpClient, sim: RobocorpSimulator, inbox: CallbackInbox) -> None:
    target = {"process_id": sim.add_process("Decommission")}
    for outcome, secret in (("completed", SECRET), ("unresolved", None)):
        sim.next_outcome(outcome)
        run = await client.start(
            target, {"n": 1}, correlation_id="c", callback_url=inbox.url, callback_secret=secret
        )
        await poll_state(lambda run=run: client.status(run.run_id, target))
    with pytest.raises(VendorRejected):
        await client.start({"process_id": "no-such-process"}, {}, correlation_id="c")


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_our_requests_and_control_rooms_answers_follow_the_contract(
    operation: str,
    client: RobocorpClient,
    sim: RobocorpSimulator,
    inbox: CallbackInbox,
    recorder: Recorder,
) -> None:
    await exercise(client, sim, inbox)
    assert operation_problems(recorder, operation) == []


async def test_we_call_nothing_outside_the_contract(
    client: RobocorpClient, sim: RobocorpSimulator, inbox: CallbackInbox, recorder: Recorder
) -> None:
    await exercise(client, sim, inbox)
    assert outside_contract(recorder) == []


@pytest.mark.parametrize("outcome", ["completed", "unresolved"])
async def test_the_per_run_callbacks_follow_the_contract(
    client: RobocorpClient, sim: RobocorpSimulator, inbox: CallbackInbox, outcome: str
) -> None:
    sim.next_outcome(outcome)
    target = {"process_id": sim.add_process("Decommission")}
    await client.start(
        target, {}, correlation_id="c", callback_url=inbox.url, callback_secret=SECRET
    )
    delivery = await inbox.next()
    # [U] The per-run callback's body and signature are assumed to be the webhooks'.
    assert delivery_problems("robocorp", PER_RUN, delivery.headers, delivery.body, SECRET) == []
    event = f"process_run.{outcome}"
    assert contract("robocorp").payload_problems(event, delivery.json()) == []


CALLBACK = {"url": "http://127.0.0.1:9/cb", "secret": "s", "callback_events": ["completed"]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"type": "with_payloads", "payloads": [{}], "callback": CALLBACK}, 200),
        ({"callback": CALLBACK}, 200),  # the untyped variant: the default input
        (None, 200),
        ({"type": "with_inputs"}, 200),  # {"started": false}: nothing queued
        (
            {
                "type": "with_payloads",
                "payloads": [{}],
                "callback": {k: v for k, v in CALLBACK.items() if k != "secret"},
            },
            400,
        ),
        (
            {
                "type": "with_payloads",
                "payloads": [{}],
                "callback": {k: v for k, v in CALLBACK.items() if k != "callback_events"},
            },
            400,
        ),
        ({"callback": {**CALLBACK, "callback_events": ["finished"]}}, 400),
        ({"type": "with_work_item_ids"}, 400),
        ({"type": "with_payloads"}, 400),
        ({"type": "with_everything"}, 400),
    ],
)
async def test_the_simulator_refuses_what_control_room_refuses(
    session: aiohttp.ClientSession,
    sim: RobocorpSimulator,
    recorder: Recorder,
    body: object,
    status: int,
) -> None:
    url = f"{sim.base_url}/api/v1/workspaces/{WORKSPACE}/processes/{sim.add_process('p')}"
    headers = {"Authorization": f"RC-WSKEY {KEY}", "Content-Type": "application/json"}
    data = b"" if body is None else orjson.dumps(body)
    async with session.post(f"{url}/process-runs", data=data, headers=headers) as answer:
        assert answer.status == status
    [exchange] = recorder.settled()
    assert bool(exchange.request_problems()) == (status == 400)  # the contract agrees
    assert exchange.problems() == []
