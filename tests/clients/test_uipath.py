"""The UiPath client against the UiPath simulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from service.clients.base import Response
from service.errors import VendorRejected, VendorUnavailable
from service.runs import RunState
from service.vendors.signatures import BodyHmac
from service.vendors.uipath import callback as uipath
from service.vendors.uipath.client import START_JOBS, UipathClient, job_run_state, output_arguments
from service.vendors.uipath.settings import UipathApi
from service.vendors.uipath.simulator import UipathSimulator
from tests.clients.support import CallbackInbox, poll_state, wait_until

CLIENT_SECRET = "uipath-client-secret-never-logged-5f2a"
WEBHOOK_SECRET = "uipath-webhook-secret-8c1d77"
INPUTS = {"factSheetId": "95fbeddd", "count": 3}


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim() -> AsyncIterator[UipathSimulator]:
    simulator = UipathSimulator(client_secret=CLIENT_SECRET, folders=(1, 7), run_duration_s=0.06)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def target(sim: UipathSimulator) -> dict[str, Any]:
    return {"release_key": sim.add_release(process_key="Args_AddNumbers")}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_client(
    session: aiohttp.ClientSession, sim: UipathSimulator, clock: Clock
) -> Callable[..., UipathClient]:
    def make(**overrides: Any) -> UipathClient:
        fields: dict[str, Any] = {
            "base_url": sim.orchestrator_url,
            "identity_url": sim.identity_url,
            "client_id": sim.client_id,
            "client_secret": CLIENT_SECRET,
            "folder_id": 1,
            "timeout_s": 5.0,
            **overrides,
        }
        return UipathClient(session, UipathApi(**fields), clock=clock)

    return make


@pytest.fixture
def client(make_client: Callable[..., UipathClient]) -> UipathClient:
    return make_client()


async def start(client: UipathClient, target: dict[str, Any], cid: str = "corr-1") -> RunState:
    return await client.start(target, INPUTS, correlation_id=cid)


# --- token -------------------------------------------------------------------------------


async def test_concurrent_callers_fetch_the_token_once(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    runs = await asyncio.gather(*(start(client, target, f"c-{n}") for n in range(5)))

    assert len({run.run_id for run in runs}) == 5
    assert sim.token_requests == [
        {"grant_type": "client_credentials", "client_id": sim.client_id, "scope": UipathApi.scopes}
    ]


async def test_token_is_renewed_two_minutes_before_expiry(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any], clock: Clock
) -> None:
    run = await start(client, target)
    clock.now += sim.expires_in - 121
    await client.status(run.run_id, target)
    assert len(sim.token_requests) == 1

    clock.now += 2
    await client.status(run.run_id, target)
    assert len(sim.token_requests) == 2


async def test_a_refused_token_is_replaced_once_and_the_call_retried(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    run = await start(client, target)
    sim.revoke_tokens()

    state = await client.status(run.run_id, target)

    assert state.run_id == run.run_id
    assert len(sim.token_requests) == 2


async def test_a_second_401_is_rejected_without_looping(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    run = await start(client, target)
    sim.revoke_tokens()
    sim.expires_in = 0  # every new token is already expired: Orchestrator keeps answering 401

    with pytest.raises(VendorRejected) as caught:
        await client.status(run.run_id, target)

    assert caught.value.status == 401
    assert len(sim.token_requests) == 2


async def test_bad_client_credentials_are_rejected_without_leaking_the_secret(
    make_client: Callable[..., UipathClient], target: dict[str, Any]
) -> None:
    client = make_client(client_secret="wrong-secret-do-not-echo")

    with pytest.raises(VendorRejected) as caught:
        await start(client, target)

    assert caught.value.status == 401
    assert "invalid_client" in str(caught.value)
    assert "wrong-secret-do-not-echo" not in str(caught.value)
    assert "wrong-secret-do-not-echo" not in repr(client)
    assert CLIENT_SECRET not in repr(make_client())


async def test_unknown_client_id_is_rejected(
    make_client: Callable[..., UipathClient], target: dict[str, Any]
) -> None:
    with pytest.raises(VendorRejected) as caught:
        await start(make_client(client_id="nobody"), target)
    assert caught.value.status == 400


# --- scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize("scopes", [None, "OR.Jobs.Read OR.Jobs.Write", " OR.Jobs.Write  OR.Jobs "])
async def test_the_least_scopes_start_find_and_poll_a_job(
    make_client: Callable[..., UipathClient],
    sim: UipathSimulator,
    target: dict[str, Any],
    scopes: str | None,
) -> None:
    client = make_client() if scopes is None else make_client(scopes=scopes)
    asked = client.settings.scopes.split()
    sim.granted_scopes = frozenset(asked)  # an application granted these only: no OR.Folders

    run = await start(client, target)
    assert await client.find(target, "corr-1") is not None
    done = await poll_state(lambda: client.status(run.run_id, target))

    assert done.status == "succeeded"
    assert [form["scope"] for form in sim.token_requests] == [" ".join(asked)]
    assert UipathApi().scopes == "OR.Jobs"


async def test_asking_for_a_scope_not_granted_gets_no_token_and_says_so(
    make_client: Callable[..., UipathClient], sim: UipathSimulator, target: dict[str, Any]
) -> None:
    sim.granted_scopes = frozenset({"OR.Jobs"})
    client = make_client(scopes="OR.Jobs OR.Folders.Read")  # the old default

    with pytest.raises(VendorRejected) as caught:
        await start(client, target)

    assert caught.value.status == 400
    assert "invalid_scope" in str(caught.value)
    assert "clients.uipath.scopes ('OR.Jobs OR.Folders.Read')" in str(caught.value)
    assert sim.starts == []


async def test_a_token_without_the_operations_scope_is_refused(
    make_client: Callable[..., UipathClient], sim: UipathSimulator, target: dict[str, Any]
) -> None:
    sim.granted_scopes = frozenset({"OR.Jobs.Read"})
    client = make_client(scopes="OR.Jobs.Read")

    with pytest.raises(VendorRejected) as caught:
        await start(client, target)

    assert caught.value.status == 403
    assert "OR.Jobs OR.Jobs.Write" in str(caught.value)
    assert await client.find(target, "corr-1") is None  # reading needs only OR.Jobs.Read


# --- start and poll ------------------------------------------------------------------------


async def test_start_sends_a_json_string_of_inputs_in_the_target_folder(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    run = await client.start({**target, "folder_id": 7}, INPUTS, correlation_id="corr-42")

    assert run.status == "pending"
    assert run.vendor_state == "Pending"
    assert run.run_id == str(next(iter(sim.jobs)))
    assert run.url == f"{sim.orchestrator_url}/odata/Jobs({run.run_id})"
    [recorded] = sim.starts
    assert recorded["folder"] == 7
    info = recorded["startInfo"]
    assert isinstance(info["InputArguments"], str)
    assert orjson.loads(info["InputArguments"]) == {**INPUTS, "correlationId": "corr-42"}
    assert info["ReleaseKey"] == target["release_key"]
    assert info["Reference"] == "corr-42"
    assert (info["Strategy"], info["JobsCount"]) == ("ModernJobsCount", 1)


async def test_the_configured_folder_is_the_default(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    await start(client, target)
    assert sim.starts[0]["folder"] == 1


async def test_a_successful_job_is_polled_to_the_end_with_its_outputs(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    sim.next_outcome("Successful", {"ticket": "INC-1001", "sum": 150})
    run = await start(client, target)

    state = await poll_state(lambda: client.status(run.run_id, target))

    assert (state.status, state.vendor_state) == ("succeeded", "Successful")
    assert state.outputs == {"ticket": "INC-1001", "sum": 150}
    assert state.detail == "Job completed"
    raw = sim.jobs[int(run.run_id)].dto()["OutputArguments"]
    assert isinstance(raw, str)  # the client parsed a JSON string, as REST sends it


@pytest.mark.parametrize(
    ("outcome", "forced"),
    [("Faulted", False), ("Stopped", False), ("Faulted", True)],
    ids=["faulted", "stopped", "forceFail-input"],
)
async def test_faulted_and_stopped_jobs_end_failed_with_their_info(
    client: UipathClient,
    sim: UipathSimulator,
    target: dict[str, Any],
    outcome: str,
    forced: bool,
) -> None:
    if forced:
        run = await client.start(target, {"forceFail": True}, correlation_id="c")
    else:
        sim.next_outcome(outcome)
        run = await start(client, target)

    state = await poll_state(lambda: client.status(run.run_id, target))

    assert (state.status, state.vendor_state) == ("failed", outcome)
    assert state.outputs == {}
    assert state.detail
    assert state.detail == sim.jobs[int(run.run_id)].info


async def test_an_unknown_release_is_rejected_with_uipaths_message(
    client: UipathClient,
) -> None:
    with pytest.raises(VendorRejected) as caught:
        await start(client, {"release_key": "no-such-release"})

    assert caught.value.status == 404
    assert "errorCode 1002" in str(caught.value)
    assert "release" in str(caught.value)


async def test_an_unknown_folder_is_rejected(client: UipathClient, target: dict[str, Any]) -> None:
    with pytest.raises(VendorRejected) as caught:
        await client.start({**target, "folder_id": 99}, INPUTS, correlation_id="c")
    assert caught.value.status == 400  # errorCode 1100, as UiPath's SDK reads it
    assert "errorCode 1100" in str(caught.value)
    assert "check folder_id" in str(caught.value)


async def test_a_release_nobody_can_run_is_rejected_for_good(
    client: UipathClient, sim: UipathSimulator
) -> None:
    target = {"release_key": sim.add_release(runnable=False)}
    with pytest.raises(VendorRejected) as caught:
        await start(client, target)
    assert caught.value.status == 409
    assert "unattended robot" in str(caught.value)
    assert "replay" in str(caught.value)
    assert sim.jobs == {}


@pytest.mark.parametrize(
    "bad_target",
    [{}, {"release_key": "k", "folder_id": "seven"}, {"release_key": "k", "folder_id": 0}],
)
async def test_an_incomplete_target_is_rejected_before_any_call(
    client: UipathClient, sim: UipathSimulator, bad_target: dict[str, Any]
) -> None:
    with pytest.raises(VendorRejected):
        await client.start(bad_target, INPUTS, correlation_id="c")
    assert sim.faults.requests == 0


async def test_a_run_id_that_is_not_a_job_id_is_rejected(
    client: UipathClient, target: dict[str, Any]
) -> None:
    with pytest.raises(VendorRejected):
        await client.status("1)/../Users(2", target)


async def test_the_simulator_refuses_object_input_arguments_and_a_missing_folder(
    session: aiohttp.ClientSession, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    form = {"grant_type": "client_credentials", "client_id": sim.client_id}
    async with session.post(sim.identity_url, data={**form, "client_secret": CLIENT_SECRET}) as r:
        token = (await r.json())["access_token"]
    url = f"{sim.orchestrator_url}/odata/Jobs/UiPath.Server.Configuration.OData.StartJobs"
    info = {"ReleaseKey": target["release_key"], "InputArguments": {"a": 1}}
    headers = {"Authorization": f"Bearer {token}", "X-UIPATH-OrganizationUnitId": "1"}

    async with session.post(url, json={"startInfo": info}, headers=headers) as as_object:
        assert as_object.status == 400
    del headers["X-UIPATH-OrganizationUnitId"]
    async with session.post(
        url, json={"startInfo": {**info, "InputArguments": "{}"}}, headers=headers
    ) as r:
        assert r.status == 400
        assert (await r.json())["errorCode"] == 1101
    assert sim.starts == []


# --- finding a start whose answer was lost ------------------------------------------------


async def test_a_start_whose_answer_was_lost_is_found_by_its_reference(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    await start(client, target, "corr-other")
    sim.faults.lose_answer("StartJobs")
    with pytest.raises(VendorUnavailable, match="502"):
        await start(client, target, "corr-lost")
    assert len(sim.starts) == 2  # Orchestrator did create the job

    found = await client.find(target, "corr-lost")

    assert found is not None
    assert sim.jobs[int(found.run_id)].reference == "corr-lost"
    assert found.status == "pending"
    assert found.url == f"{sim.orchestrator_url}/odata/Jobs({found.run_id})"


async def test_find_answers_none_when_no_job_has_the_reference(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    await start(client, target, "corr-1")
    assert await client.find(target, "corr-2") is None
    assert await client.find(target, "it's quoted") is None  # an OData literal, escaped
    assert await client.find({**target, "folder_id": 7}, "corr-1") is None  # another folder


async def test_the_simulator_refuses_a_filter_it_does_not_implement(
    session: aiohttp.ClientSession, sim: UipathSimulator, client: UipathClient
) -> None:
    token = await client._bearer()
    headers = {"Authorization": f"Bearer {token}", "X-UIPATH-OrganizationUnitId": "1"}
    url = f"{sim.orchestrator_url}/odata/Jobs"
    async with session.get(url, params={"$filter": "State eq 'Faulted'"}, headers=headers) as r:
        assert r.status == 501  # valid OData the simulator does not implement
    async with session.get(url, params={"$top": "1001"}, headers=headers) as r:
        assert r.status == 400  # over the documented limit


# --- webhooks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "event_type"),
    [("Successful", "job.completed"), ("Faulted", "job.faulted"), ("Stopped", "job.stopped")],
)
async def test_a_signed_webhook_reaches_our_receiver_and_parses(
    client: UipathClient,
    sim: UipathSimulator,
    target: dict[str, Any],
    inbox: CallbackInbox,
    outcome: str,
    event_type: str,
) -> None:
    sim.configure_webhook(inbox.url, WEBHOOK_SECRET)
    sim.next_outcome(outcome, {"sum": 150})
    run = await start(client, target)

    headers, body = await asyncio.wait_for(inbox.received.get(), 5)

    BodyHmac("X-UiPath-Signature", "base64", [WEBHOOK_SECRET]).verify(headers, body)
    payload = orjson.loads(body)
    facts = uipath.normalise(payload)
    assert facts.type == f"uipath.{event_type}"
    assert facts.subject == run.run_id
    assert facts.source == "uipath:1"
    assert len(payload["EventId"]) == 32
    job = payload["Jobs"][0] if event_type == "job.stopped" else payload["Job"]
    assert job["Release"]["Key"] == target["release_key"]
    state = job_run_state(job)
    assert state.status == ("succeeded" if outcome == "Successful" else "failed")
    assert state.outputs == ({"sum": 150} if outcome == "Successful" else {})


async def test_a_webhook_added_over_the_api_is_sent_only_its_events(
    session: aiohttp.ClientSession,
    client: UipathClient,
    sim: UipathSimulator,
    target: dict[str, Any],
    inbox: CallbackInbox,
) -> None:
    run = await start(client, target)  # also gives the client a token
    token = next(iter(sim.tokens))
    doc = {
        "Name": "bridge",
        "Url": inbox.url,
        "Secret": WEBHOOK_SECRET,
        "Enabled": True,
        "SubscribeToAllEvents": False,
        "AllowInsecureSsl": False,
        "Events": [{"EventType": "job.faulted"}],
    }
    url = f"{sim.orchestrator_url}/odata/Webhooks"
    auth = {"Authorization": f"Bearer {token}"}
    for required in ("Name", "SubscribeToAllEvents", "AllowInsecureSsl"):
        incomplete = {k: v for k, v in doc.items() if k != required}
        async with session.post(url, json=incomplete, headers=auth) as r:
            assert r.status == 400, required  # as Orchestrator: the field is required
    async with session.post(url, json=doc, headers=auth) as r:
        assert r.status == 201
        assert "Secret" not in await r.json()

    await poll_state(lambda: client.status(run.run_id, target))
    sim.next_outcome("Faulted")
    faulted = await start(client, target)

    headers, body = await asyncio.wait_for(inbox.received.get(), 5)
    BodyHmac("X-UiPath-Signature", "base64", [WEBHOOK_SECRET]).verify(headers, body)
    assert uipath.normalise(orjson.loads(body)).subject == faulted.run_id
    assert inbox.received.empty()


async def test_a_disabled_webhook_sends_nothing_but_polling_completes(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any], inbox: CallbackInbox
) -> None:
    sim.configure_webhook(inbox.url, WEBHOOK_SECRET)
    sim.disable_webhook()
    run = await start(client, target)

    state = await poll_state(lambda: client.status(run.run_id, target))

    assert state.status == "succeeded"
    assert [d["outcome"] for d in sim.deliveries] == ["disabled"]
    assert inbox.received.empty()


async def test_a_failed_delivery_opens_the_circuit_breaker(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any], inbox: CallbackInbox
) -> None:
    sim.configure_webhook(inbox.url, WEBHOOK_SECRET)
    inbox.answers.append(500)
    await start(client, target, "first")
    await wait_until(lambda: sim.deliveries)

    second = await start(client, target, "second")
    state = await poll_state(lambda: client.status(second.run_id, target))

    assert state.status == "succeeded"
    assert [d["outcome"] for d in sim.deliveries] == ["failed", "circuit-open"]
    assert inbox.received.qsize() == 1


async def test_dropped_callbacks_leave_only_polling(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any], inbox: CallbackInbox
) -> None:
    sim.configure_webhook(inbox.url, WEBHOOK_SECRET)
    sim.faults.drop_callbacks = True
    run = await start(client, target)

    assert (await poll_state(lambda: client.status(run.run_id, target))).status == "succeeded"
    assert [d["outcome"] for d in sim.deliveries] == ["dropped"]
    assert inbox.received.empty()


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_outages_and_throttling_are_retryable(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any], status: int
) -> None:
    run = await start(client, target)
    sim.faults.retry_after_s = 7
    sim.faults.fail(status)

    with pytest.raises(VendorUnavailable) as caught:
        await client.status(run.run_id, target)

    assert caught.value.retry_after_s == (7.0 if status == 429 else None)
    assert (await client.status(run.run_id, target)).run_id == run.run_id


async def test_a_hanging_orchestrator_times_out_as_unavailable(
    make_client: Callable[..., UipathClient], sim: UipathSimulator, target: dict[str, Any]
) -> None:
    client = make_client(timeout_s=0.3)
    run = await start(client, target)
    sim.faults.hang()

    with pytest.raises(VendorUnavailable, match="timed out"):
        await client.status(run.run_id, target)


async def test_no_error_text_carries_a_token_or_secret(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any]
) -> None:
    await start(client, target)
    errors: list[Exception] = []
    for status in (401, 404, 503):
        sim.faults.fail(status, times=2)
        with pytest.raises((VendorRejected, VendorUnavailable)) as caught:
            await client.status("1", target)
        errors.append(caught.value)
        sim.faults.reset()

    texts = " ".join(str(e) for e in errors) + repr(client) + repr(client.settings)
    for secret in (CLIENT_SECRET, *sim.tokens):
        assert secret not in texts


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        (None, {}),
        ("", {}),
        ("not json", {}),
        ("[1, 2]", {}),
    ],
)
def test_output_arguments_tolerate_string_object_and_junk(raw: Any, parsed: Any) -> None:
    assert output_arguments(raw) == parsed


def test_unknown_and_waiting_states_keep_polling() -> None:
    assert job_run_state({"Id": 1, "State": "Suspended"}).status == "running"
    assert job_run_state({"Id": 1, "State": "SomethingNew"}).status == "running"
    assert job_run_state({"Id": 1, "State": "Stopping"}).status == "running"


ERROR = {"code": "Robot.Exception", "title": "The process threw", "detail": "boom"}


@pytest.mark.parametrize(
    ("job", "detail"),
    [
        ({"Info": "boom", "Error": ERROR}, "boom"),  # webhook: the error repeats Info
        (
            {"Info": "Job faulted", "Error": ERROR},
            "Job faulted (Robot.Exception: The process threw: boom)",
        ),
        ({"Info": None, "JobError": ERROR}, "Robot.Exception: The process threw: boom"),  # REST
        ({"Info": "Job completed", "JobError": None}, "Job completed"),
        ({}, None),
    ],
)
def test_the_error_is_error_in_webhooks_and_job_error_in_rest(
    job: dict[str, Any], detail: str | None
) -> None:
    assert job_run_state({"Id": 1, "State": "Faulted", **job}).detail == detail


def test_a_job_without_an_id_has_no_run_id() -> None:
    # The spec makes every webhook field nullable: a null Id must not become "None".
    assert job_run_state({"Id": None, "Key": "k", "State": "Successful"}).run_id == ""


async def test_the_simulators_faulted_job_carries_its_error_both_ways(
    client: UipathClient, sim: UipathSimulator, target: dict[str, Any], inbox: CallbackInbox
) -> None:
    sim.configure_webhook(inbox.url, WEBHOOK_SECRET)
    sim.next_outcome("Faulted")
    run = await start(client, target)
    webhook = (await inbox.next()).json()
    job = sim.jobs[int(run.run_id)]
    assert webhook["Job"]["Error"]["detail"] == job.info
    assert "Reference" not in webhook["Job"]  # correlate by Job.Id / Job.Key
    assert job.dto()["JobError"] == webhook["Job"]["Error"]
    assert (await client.status(run.run_id, target)).detail == job.info


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Folder does not exist.", "errorCode": 1100},
        {"Message": "Folder does not exist.", "ErrorCode": 1100},  # the spec's casing
        {"message": "Folder does not exist.", "errorCode": "1100"},
    ],
)
def test_start_jobs_errors_are_read_in_either_casing(client: UipathClient, body: Any) -> None:
    where = f"POST /acme/default/orchestrator_{START_JOBS}"
    error = client.translate(where, Response(400, {}, orjson.dumps(body)))
    assert isinstance(error, VendorRejected)
    assert "Folder does not exist. (errorCode 1100)" in str(error)
    assert "check folder_id" in str(error)
