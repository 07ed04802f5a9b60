"""Leapwork: our client and the simulator against ../shared/contracts/leapwork.json
(Leapwork's own CI plugins and the v4 docs). Leapwork sends no webhooks: our callback
body (tests/fixtures/leapwork-run-finished.json) is our own shape, outside the contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from service.errors import VendorRejected, VendorUnavailable
from service.vendors.leapwork.client import LeapworkClient
from service.vendors.leapwork.settings import LeapworkApi
from service.vendors.leapwork.simulator import LeapworkSimulator
from tests.clients.support import poll_state
from tests.contracts.contract import contract
from tests.contracts.recording import Recorder, operation_problems, outside_contract

KEY = "contract-access-key"
OPERATIONS = ["RunScheduleNow", "GetRunStatus", "GetRunItemIds", "GetRunItem"]


@pytest.fixture
async def sim() -> AsyncIterator[LeapworkSimulator]:
    simulator = LeapworkSimulator(KEY, run_duration_s=0.04)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(session: aiohttp.ClientSession, sim: LeapworkSimulator) -> LeapworkClient:
    return LeapworkClient(session, LeapworkApi(base_url=sim.base_url, access_key=KEY))


async def exercise(client: LeapworkClient, sim: LeapworkSimulator) -> None:
    target = {"schedule_id": sim.add_schedule("Regression", ["Login", "Order"])}
    inputs = {"factSheet": "a b&c=d", "count": 3}
    for statuses, pass_word, ids_field in [
        ((), "Passed", "RunItemIds"),
        (("Failed",), "Pass", "RunItemsIds"),
    ]:
        sim.pass_status, sim.item_ids_field = pass_word, ids_field  # plugins' and docs' words
        sim.next_outcome(*statuses)
        run = await client.start(
            target,
            inputs,
            correlation_id="c 1",
            callback_url="http://127.0.0.1:9/cb",
            callback_secret="t",
        )
        if statuses:
            with pytest.raises(VendorUnavailable):  # 410: still executing
                await client.start(target, {}, correlation_id="c 2")
        await poll_state(lambda run=run: client.status(run.run_id, target))
    with pytest.raises(VendorRejected):  # 404: no such schedule
        await client.start({"schedule_id": str(uuid.uuid4())}, {}, correlation_id="c")
    with pytest.raises(VendorRejected):  # 400: not a variable name
        await client.start(target, {"bad name": "x"}, correlation_id="c")
    with pytest.raises(VendorRejected):  # 404: no such run
        await client.status(str(uuid.uuid4()), target)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_our_requests_and_the_controllers_answers_follow_the_contract(
    operation: str, client: LeapworkClient, sim: LeapworkSimulator, recorder: Recorder
) -> None:
    await exercise(client, sim)
    assert operation_problems(recorder, operation) == []


async def test_we_call_nothing_outside_the_contract(
    client: LeapworkClient, sim: LeapworkSimulator, recorder: Recorder
) -> None:
    await exercise(client, sim)
    assert outside_contract(recorder) == []


async def test_run_items_carry_both_spellings_the_sources_use(
    client: LeapworkClient, sim: LeapworkSimulator, recorder: Recorder
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke")}
    run = await client.start(target, {}, correlation_id="c")
    await poll_state(lambda: client.status(run.run_id, target))
    item = [e for e in recorder.of("GetRunItem") if e.status == 200][-1]
    doc = orjson.loads(item.body)
    # [U] The docs write RunId and AgentInfo.EnvironmentTitle; the plugins read
    # AutomationRunId and AgentInfo.AgentTitle. The simulator sends both.
    assert doc["RunId"] == doc["AutomationRunId"] == run.run_id
    assert {"AgentTitle", "EnvironmentTitle"} <= set(doc["AgentInfo"])
    operation = contract("leapwork").operation("GetRunItem")
    assert operation.response_problems(200, item.body, None) == []
