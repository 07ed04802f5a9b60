"""SAP LeanIX: our client, the simulator and the fixtures against
../shared/contracts/leanix.json (the Webhooks API model, the docs' payloads and GraphQL).

The client calls the token exchange and GraphQL (the Metrics API point is held to the
contract in tests/clients/test_leanix_metrics.py); the PULL operations are not used yet.
GraphQL requests are held to the contract's SDL: the mutations' signatures, the Patch
input (lowercase ops; no value on a remove) and the comment status. Reads (`query`
operations) are outside that SDL, which has mutations only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from service.clients.leanix import LeanixClient
from service.clients.leanix_graphql import Patch, Update
from service.errors import VendorRejected
from service.settings import LeanixApi
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.vendors import normalise
from tests.clients.support import CallbackInbox, wait_until
from tests.contracts.contract import contract, delivery_problems
from tests.contracts.recording import Recorder, operation_problems, outside_contract

OPERATIONS = ["Token", "GraphQL"]
DEFAULT = "FACT_SHEET_CREATED"  # the contract's DEFAULT payload webhook begins so
WRAPPED = "any event, payloadMode WRAPPED_EVENT"
AUTH = "Basic Y29udHJhY3Q6dGVzdA=="


@pytest.fixture
async def sim() -> AsyncIterator[LeanixSimulator]:
    simulator = LeanixSimulator()
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(session: aiohttp.ClientSession, sim: LeanixSimulator) -> LeanixClient:
    settings = LeanixApi(base_url=sim.base_url, api_token=DEFAULT_API_TOKEN, rate_limit_rps=1e3)
    return LeanixClient(session, settings)


async def exercise(client: LeanixClient, sim: LeanixSimulator) -> None:
    """Every kind of request the service makes of LeanIX."""
    fs_id = sim.add_fact_sheet(name="CRM", lifecycle={"active": "2023-08-31"}, tags=["old"])
    await client.fact_sheet(fs_id)
    patches = [
        Patch("replace", "/description", "synced"),
        Patch.json(
            "replace", "/lifecycle", {"phases": [{"phase": "plan", "startDate": "2024-01-01"}]}
        ),
        Patch("remove", "/lifecycle/plan"),
        Patch("remove", "/tags"),
    ]
    await client.update_fact_sheet(fs_id, patches, comment="by the bridge")
    await client.update_fact_sheet(fs_id, [Patch("replace", "/name", "CRM 2")], validate_only=True)
    await client.add_tags(fs_id, ["bridge-done"])
    await client.create_comment(fs_id, "run 7 succeeded")
    other = sim.add_fact_sheet(name="ERP")
    updates = [
        Update(fs_id, [Patch("replace", "/lxState", "APPROVED")]),
        Update(other, [Patch("replace", "/lxState", "NOT_A_STATE")]),
        Update("missing", [Patch("replace", "/name", "x")]),
    ]
    await client.update_many(updates)
    with pytest.raises(VendorRejected):
        await client.fact_sheet("missing")
    sim.expire_tokens()  # the next call is answered 401, then made again with a new token
    await client.fact_sheet(fs_id)


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_our_requests_and_leanixs_answers_follow_the_contract(
    operation: str, client: LeanixClient, sim: LeanixSimulator, recorder: Recorder
) -> None:
    await exercise(client, sim)
    assert operation_problems(recorder, operation) == []


async def test_we_call_nothing_outside_the_contract(
    client: LeanixClient, sim: LeanixSimulator, recorder: Recorder
) -> None:
    await exercise(client, sim)
    assert outside_contract(recorder) == []


@pytest.mark.parametrize("event_type", ["FactSheetCreatedEvent", "FactSheetUpdatedEvent"])
async def test_default_deliveries_follow_the_contract(
    sim: LeanixSimulator, inbox: CallbackInbox, event_type: str
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM", lifecycle={"active": "2023-08-31"})
    await sim.send_event(inbox.url, AUTH, fs_id, event_type, "someone", "DEFAULT")
    delivery = await inbox.next()
    assert delivery_problems("leanix", DEFAULT, delivery.headers, delivery.body, None) == []
    assert delivery.headers["Authorization"] == AUTH  # verbatim; LeanIX signs nothing
    assert isinstance(delivery.json()["id"], int)


async def test_wrapped_deliveries_follow_the_contract(
    sim: LeanixSimulator, inbox: CallbackInbox
) -> None:
    fs_id = sim.add_fact_sheet(name="CRM")
    await sim.send_event(
        inbox.url, AUTH, fs_id, "FactSheetArchivedEvent", "someone", "WRAPPED_EVENT"
    )
    delivery = await inbox.next()
    assert delivery_problems("leanix", WRAPPED, delivery.headers, delivery.body, None) == []
    wrapped = delivery.json()
    assert isinstance(wrapped["id"], str) and isinstance(wrapped["sequenceInfo"], int)
    assert contract("leanix").payload_problems(DEFAULT, wrapped["payload"]) == []
    # The same event gets the same CloudEvent id in either payload mode.
    plain = normalise.leanix(wrapped["payload"])
    assert normalise.leanix(wrapped).sender_id == plain.sender_id


async def test_subscription_deliveries_follow_the_contract(
    client: LeanixClient, sim: LeanixSimulator, inbox: CallbackInbox
) -> None:
    sim.subscribe(inbox.url, AUTH)
    fs_id = sim.add_fact_sheet(name="CRM")
    await client.update_fact_sheet(fs_id, [Patch("replace", "/description", "x")])
    await wait_until(lambda: not inbox.received.empty())
    delivery = await inbox.next()
    assert delivery_problems("leanix", DEFAULT, delivery.headers, delivery.body, None) == []


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("COMMENT_CREATED", "leanix.comment.created"),
        ("COMMENT_REPLY_ADDED", "leanix.comment_reply.added"),
    ],
)
def test_comment_events_the_contract_lists_are_typed(raw: str, kind: str) -> None:
    assert normalise.leanix({"id": "7", "type": raw, "workspaceId": "w"}).type == kind
