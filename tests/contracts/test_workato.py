"""Workato: our client and the simulator against ../shared/contracts/workato.json (the API
Platform docs). The body of an API recipe's endpoint is defined by the recipe, i.e. by us
(README), so the contract holds the URL, the method, the auth header and the status codes.
Our callback body (tests/fixtures/workato-job-completed.json) is our own shape."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from service.errors import VendorRejected
from service.vendors.workato.client import WorkatoClient
from service.vendors.workato.settings import WorkatoApi
from service.vendors.workato.simulator import WorkatoSimulator
from tests.clients.support import CallbackInbox
from tests.contracts.recording import Recorder, operation_problems, outside_contract

TOKEN = "contract-workato-token"


@pytest.fixture
async def sim() -> AsyncIterator[WorkatoSimulator]:
    simulator = WorkatoSimulator(TOKEN, run_duration_s=0.04)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(session: aiohttp.ClientSession) -> WorkatoClient:
    return WorkatoClient(session, WorkatoApi(api_token=TOKEN))


async def exercise(client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox) -> None:
    for mode in ("sync", "async"):
        for outcome in ("completed", "failed"):
            sim.next_outcome(outcome)
            target = {"endpoint_url": sim.add_endpoint(f"{mode}-{outcome}", mode=mode)}
            await client.start(
                target, {"n": 1}, correlation_id="c", callback_url=inbox.url, callback_secret="t"
            )
    stopped = sim.add_endpoint("stopped", mode="sync")
    sim.stop_recipe("stopped")
    with pytest.raises(VendorRejected):  # 404: the recipe is not running
        await client.start({"endpoint_url": stopped}, {}, correlation_id="c")


async def test_our_requests_and_workatos_answers_follow_the_contract(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox, recorder: Recorder
) -> None:
    await exercise(client, sim, inbox)
    assert operation_problems(recorder, "CallApiPlatformEndpoint") == []


async def test_we_call_nothing_outside_the_contract(
    client: WorkatoClient, sim: WorkatoSimulator, inbox: CallbackInbox, recorder: Recorder
) -> None:
    await exercise(client, sim, inbox)
    assert outside_contract(recorder) == []
