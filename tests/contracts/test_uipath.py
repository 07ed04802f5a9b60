"""UiPath Orchestrator: our client, the simulator and the fixtures against
../shared/contracts/uipath.json (Orchestrator swagger v20 and UiPath's own SDKs)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from service.automation.completion import parse
from service.cloudevent import CloudEvent
from service.errors import VendorRejected
from service.vendors.uipath.client import UipathClient
from service.vendors.uipath.settings import UipathApi
from service.vendors.uipath.simulator import UipathSimulator
from tests.clients.support import CallbackInbox, poll_state
from tests.contracts.contract import contract, delivery_problems
from tests.contracts.recording import Recorder, operation_problems, outside_contract
from tests.senders import fixture

SECRET = "contract-uipath-webhook-secret"
# Every operation our client calls: the token exchange, StartJobs, GetJob, and ListJobs
# (find() looks a lost start up by its Reference).
OPERATIONS = ["Token", "StartJobs", "GetJob", "ListJobs"]


@pytest.fixture
async def sim() -> AsyncIterator[UipathSimulator]:
    simulator = UipathSimulator(client_secret="contract-client-secret", run_duration_s=0.04)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(session: aiohttp.ClientSession, sim: UipathSimulator) -> UipathClient:
    settings = UipathApi(
        base_url=sim.orchestrator_url,
        identity_url=sim.identity_url,
        client_id=sim.client_id,
        client_secret="contract-client-secret",
        folder_id=1,
        timeout_s=5.0,
    )
    return UipathClient(session, settings)


async def exercise(client: UipathClient, sim: UipathSimulator) -> None:
    """What the service asks of Orchestrator, on its good and its bad days."""
    target = {"release_key": sim.add_release(process_key="Args_AddNumbers")}
    for outcome in ("Successful", "Faulted", "Stopped"):
        sim.next_outcome(outcome, {"sum": 150})
        run = await client.start(target, {"n": 1}, correlation_id=f"corr-{outcome}")
        await poll_state(lambda run=run: client.status(run.run_id, target))
    assert await client.find(target, "corr-Successful") is not None
    assert await client.find(target, "it's nobody's") is None
    refused = [
        {"release_key": str(uuid.uuid4())},  # 404, errorCode 1002
        {**target, "folder_id": 99},  # 400, errorCode 1100
        {"release_key": sim.add_release(runnable=False)},  # 409
    ]
    for bad in refused:
        with pytest.raises(VendorRejected):
            await client.start(bad, {}, correlation_id="refused")
    sim.revoke_tokens()  # the next call is answered 401, then made again with a new token
    await client.status(run.run_id, target)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_our_requests_and_orchestrators_answers_follow_the_contract(
    operation: str, client: UipathClient, sim: UipathSimulator, recorder: Recorder
) -> None:
    await exercise(client, sim)
    assert operation_problems(recorder, operation) == []


async def test_we_call_nothing_outside_the_contract(
    client: UipathClient, sim: UipathSimulator, recorder: Recorder
) -> None:
    await exercise(client, sim)
    assert outside_contract(recorder) == []


@pytest.mark.parametrize(
    ("outcome", "event"),
    [("Successful", "job.completed"), ("Faulted", "job.faulted"), ("Stopped", "job.stopped")],
)
@pytest.mark.parametrize("secret", [SECRET, None], ids=["signed", "unsigned"])
async def test_the_simulators_webhooks_follow_the_contract(
    client: UipathClient,
    sim: UipathSimulator,
    inbox: CallbackInbox,
    outcome: str,
    event: str,
    secret: str | None,
) -> None:
    sim.configure_webhook(inbox.url, secret)
    sim.next_outcome(outcome, {"sum": 150})
    await client.start({"release_key": sim.add_release()}, {}, correlation_id="c")
    delivery = await inbox.next()
    assert delivery_problems("uipath", event, delivery.headers, delivery.body, secret) == []
    # [U] whether Orchestrator omits the signature without a secret: the simulator does.
    assert ("X-UiPath-Signature" in delivery.headers) == (secret is not None)


def test_a_webhook_is_matched_by_its_jobs_id_and_key_not_a_reference() -> None:
    # The webhook's Job (SimpleJobEventDto) has no Reference: the run is found by Job.Id,
    # the run id we keep, or by Job.Key.
    dto = contract("uipath").defs["SimpleJobEventDto"]
    assert "Reference" not in dto["properties"] and dto["additionalProperties"] is False
    payload: dict[str, Any] = orjson.loads(fixture("uipath-job-completed.json"))
    event = CloudEvent(
        "e", "uipath:1", "uipath.job.completed", "2018-11-26T14:37:26Z", data=payload
    )
    keys, state = parse(event)
    assert keys == ("148712", "d7a77655-2b7f-4bb1-9f79-8e5d4a3b1c77")
    assert state.outputs == {"product": 5000, "sum": 150, "diff": 50}  # an object here


async def test_the_simulator_refuses_what_orchestrator_refuses(
    session: aiohttp.ClientSession, sim: UipathSimulator, recorder: Recorder
) -> None:
    form = {"grant_type": "client_credentials", "client_id": sim.client_id}
    async with session.post(
        sim.identity_url, data={**form, "client_secret": "contract-client-secret"}
    ) as answer:
        token = (await answer.json())["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    start = f"{sim.orchestrator_url}/odata/Jobs/UiPath.Server.Configuration.OData.StartJobs"
    info = {"ReleaseKey": sim.add_release(), "InputArguments": "{}"}
    webhook = {
        "Name": "b",
        "Url": "http://127.0.0.1:9/x",
        "Enabled": True,
        "SubscribeToAllEvents": True,
        "AllowInsecureSsl": False,
    }
    invalid = [
        ("POST", start, {"startInfo": {**info, "InputArguments": {"a": 1}}}, 1),
        ("POST", start, {"startInfo": info}, None),  # no folder header
        ("POST", start, {"startInfo": {**info, "InputArguments": "x" * 10_001}}, 1),
        ("POST", f"{sim.orchestrator_url}/odata/Webhooks", {**webhook, "Name": None}, None),
        ("POST", f"{sim.orchestrator_url}/odata/Webhooks", {**webhook, "Secret": "s" * 101}, None),
    ]
    for method, url, body, folder in invalid:
        headers = {**auth, **({"X-UIPATH-OrganizationUnitId": "1"} if folder else {})}
        async with session.request(method, url, json=body, headers=headers) as answer:
            assert answer.status == 400, body
    sent = [e for e in recorder.settled() if e.operation in ("StartJobs", "CreateWebhook")]
    assert [bool(e.request_problems()) for e in sent] == [True] * len(invalid)
    assert recorder.problems() == []  # and so each was refused with a 4xx
