"""Several LeanIX workspaces, end to end: a production and a sandbox workspace on two
LeanIX simulators, each event handled with its own workspace's token and written back to
its own workspace; rules scoped to one; the loop guard knowing each technical user."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from service.simulators.lab import LEANIX_WEBHOOK_AUTH, Lab
from service.simulators.leanix import DEFAULT_API_TOKEN, DEFAULT_USER_ID, LeanixSimulator
from tests.e2e.conftest import Service, drained, eventually, received_inputs
from tests.e2e.test_loop import written_back

pytestmark = pytest.mark.e2e

Start = Callable[..., Awaitable[Service]]
SANDBOX_ID = "e3f6f016-314e-47f9-b2c9-6832b37b7177"
SANDBOX_TOKEN = "sandbox-api-token"
SANDBOX_USER = "e3110cd1-a4b6-488e-9079-1297bd37a645"
SANDBOX_AUTH = "Basic c2FuZGJveDp3ZWJob29r"
SOMEONE = "9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"  # an architect, in either workspace


@pytest.fixture
async def sandbox() -> AsyncIterator[LeanixSimulator]:
    simulator = LeanixSimulator({SANDBOX_TOKEN: SANDBOX_USER}, workspace_id=SANDBOX_ID)
    async with simulator.serve():
        yield simulator


def two_workspaces(lab: Lab, sandbox: LeanixSimulator) -> dict[str, Any]:
    """The sections that make the service serve the lab's LeanIX and the sandbox."""
    production = {"name": "production", "id": lab.leanix.workspace_id,
                  "base_url": lab.leanix.base_url, "api_token": DEFAULT_API_TOKEN,
                  "authorization": [LEANIX_WEBHOOK_AUTH]}  # fmt: skip
    other = {"name": "sandbox", "id": SANDBOX_ID, "base_url": sandbox.base_url,
             "api_token": SANDBOX_TOKEN, "authorization": [SANDBOX_AUTH]}  # fmt: skip
    return {
        "leanix": {"workspaces": [production, other]},
        "clients": {"leanix": {"api_token": ""}},  # the single-workspace keys stay unset
        "sources": {"leanix": {"authorization": []}},
    }


async def from_sandbox(
    lab: Lab, sandbox: LeanixSimulator, fact_sheet: str, user: str = SOMEONE
) -> int:
    url = f"{lab.service_url}/webhooks/leanix"
    return await sandbox.send_event(url, SANDBOX_AUTH, fact_sheet, user_id=user)


def sandbox_tags(sandbox: LeanixSimulator, fact_sheet: str) -> set[str]:
    return {tag["name"] for tag in sandbox.fact_sheets[fact_sheet].tags}


async def test_each_workspace_is_called_with_its_own_token_and_written_back_there(
    lab: Lab, sandbox: LeanixSimulator, service_factory: Start
) -> None:
    sections = two_workspaces(lab, sandbox)
    sections["clients"]["leanix"]["metrics"] = {"enabled": True, "flush_interval_s": 0.05}
    await service_factory([lab.rule("uipath")], **sections)
    in_production = lab.leanix.add_fact_sheet("Application", "CRM")
    in_sandbox = sandbox.add_fact_sheet("Application", "CRM (sandbox)")

    assert await lab.change(in_production) == 202
    assert await from_sandbox(lab, sandbox, in_sandbox) == 202

    await eventually(lambda: written_back(lab, in_production, "uipath-done"), what="production")
    await eventually(lambda: "uipath-done" in sandbox_tags(sandbox, in_sandbox), what="sandbox")
    # The comment is the write-back's second call, after the tags: wait for it too.
    await eventually(lambda: sandbox.comments.get(in_sandbox), what="sandbox comment")
    assert in_sandbox not in lab.leanix.fact_sheets
    # Each simulator saw only its own technical user's tokens.
    assert {issued.user_id for issued in sandbox.issued.values()} == {SANDBOX_USER}
    assert {issued.user_id for issued in lab.leanix.issued.values()} == {DEFAULT_USER_ID}
    # Each run's metric went to its own workspace.
    await eventually(lambda: sandbox.metrics.points and lab.leanix.metrics.points, what="points")
    [point] = sandbox.metrics.points
    assert point["workspaceId"] == SANDBOX_ID and point["_user"] == SANDBOX_USER
    assert {"k": "factSheetId", "v": in_sandbox} in point["tags"]


async def test_a_rule_scoped_to_one_workspace_ignores_the_others(
    lab: Lab, sandbox: LeanixSimulator, service_factory: Start
) -> None:
    rule = lab.rule("uipath")
    rule["when"] = {**rule["when"], "workspace": "sandbox"}
    service = await service_factory([rule], **two_workspaces(lab, sandbox))
    in_production = lab.leanix.add_fact_sheet("Application", "CRM")
    in_sandbox = sandbox.add_fact_sheet("Application", "CRM (sandbox)")

    assert await lab.change(in_production) == 202
    await eventually(lambda: drained(service.settings), what="the production event handled")
    assert lab.uipath.starts == []

    assert await from_sandbox(lab, sandbox, in_sandbox) == 202
    await eventually(lambda: "uipath-done" in sandbox_tags(sandbox, in_sandbox), what="sandbox")
    assert [s["factSheetId"] for s in received_inputs(lab, "uipath")] == [in_sandbox]


async def test_the_loop_guard_knows_each_workspaces_technical_user(
    lab: Lab, sandbox: LeanixSimulator, service_factory: Start
) -> None:
    service = await service_factory([lab.rule("uipath")], **two_workspaces(lab, sandbox))
    in_sandbox = sandbox.add_fact_sheet("Application", "CRM (sandbox)")
    in_production = lab.leanix.add_fact_sheet("Application", "CRM")

    # Our sandbox technical user's own change: an echo, ignored.
    assert await from_sandbox(lab, sandbox, in_sandbox, user=SANDBOX_USER) == 202
    await eventually(lambda: drained(service.settings), what="the echo handled")
    assert lab.uipath.starts == []

    # The same user id in production is not ours there: the change is acted on.
    url = f"{lab.service_url}/webhooks/leanix"
    status = await lab.leanix.send_event(
        url, LEANIX_WEBHOOK_AUTH, in_production, user_id=SANDBOX_USER
    )
    assert status == 202
    await eventually(lambda: written_back(lab, in_production, "uipath-done"), what="production")
    assert [s["factSheetId"] for s in received_inputs(lab, "uipath")] == [in_production]


async def test_a_workspaces_credential_is_refused_for_another_workspaces_event(
    lab: Lab, sandbox: LeanixSimulator, service_factory: Start
) -> None:
    await service_factory([lab.rule("uipath")], **two_workspaces(lab, sandbox))
    in_production = lab.leanix.add_fact_sheet("Application", "CRM")

    url = f"{lab.service_url}/webhooks/leanix"
    status = await lab.leanix.send_event(url, SANDBOX_AUTH, in_production, user_id=SOMEONE)
    assert status == 401


async def test_the_worker_reconciles_each_workspace_on_a_schedule(
    lab: Lab, sandbox: LeanixSimulator, service_factory: Start
) -> None:
    """No webhook at all: the scheduled reconciliation finds each workspace's Fact Sheet
    and the run of each writes back to its own workspace."""
    rule = lab.rule("uipath", on=["leanix.factsheet.reconciled"])
    in_production = lab.leanix.add_fact_sheet("Application", "CRM")
    in_sandbox = sandbox.add_fact_sheet("Application", "CRM (sandbox)")
    sections = two_workspaces(lab, sandbox) | {"reconcile": {"interval": "1s", "margin": "1m"}}
    await service_factory([rule], **sections)

    await eventually(lambda: written_back(lab, in_production, "uipath-done"), what="production")
    await eventually(lambda: "uipath-done" in sandbox_tags(sandbox, in_sandbox), what="sandbox")
    assert sorted(s["factSheetId"] for s in received_inputs(lab, "uipath")) == sorted(
        [in_production, in_sandbox]
    )  # each once, though reconciled on every tick
    assert {issued.user_id for issued in sandbox.issued.values()} == {SANDBOX_USER}
