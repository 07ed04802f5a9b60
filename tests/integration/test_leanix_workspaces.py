"""Every LeanIX-facing role per workspace, against two LeanIX simulators (production and
sandbox, each its own workspace with its own technical user and token), a real RabbitMQ
and a real store: `subscriptions plan/apply` (grouped per workspace), one puller per
workspace finding the PULL subscription `apply` made by its identifier, and `reconcile`
of each (or one) workspace. Each simulator must only ever see its own workspace's token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from service import reconcile
from service.bus.broker import Broker
from service.cloudevent import decode
from service.pull import start as pulling
from service.settings import Settings
from service.simulators.leanix import LeanixSimulator
from service.store import Database
from service.subscriptions_cli import run_command as subscriptions
from tests.integration.conftest import Inspector
from tests.waiting import eventually

pytestmark = pytest.mark.integration

PROD_ID, PROD_TOKEN = "0b6e4c52-1d8a-4f4e-9a51-6c1f0f3b2a01", "production-api-token"
PROD_USER, PROD_AUTH = "6a1d7e52-3c1b-4f6e-8a2d-5b4c3e2f1a01", "Basic cHJvZDp3ZWJob29r"
SANDBOX_ID, SANDBOX_TOKEN = "e3f6f016-314e-47f9-b2c9-6832b37b7177", "sandbox-api-token"
SANDBOX_USER, SANDBOX_AUTH = "e3110cd1-a4b6-488e-9079-1297bd37a645", "Basic c2FuZGJveDp3ZWJob29r"
SECRETS = (PROD_TOKEN, SANDBOX_TOKEN, PROD_AUTH, SANDBOX_AUTH)
RULE = {
    "name": "provision",
    "on": ["leanix.factsheet.updated", "leanix.factsheet.reconciled"],
    "when": {"fact_sheet_type": "Application", "tag": "automate"},
    "start": {"vendor": "uipath", "target": {"release_key": "r-1"}},
}


@pytest.fixture
async def sims() -> AsyncIterator[tuple[LeanixSimulator, LeanixSimulator]]:
    prod = LeanixSimulator({PROD_TOKEN: PROD_USER}, workspace_id=PROD_ID)
    sandbox = LeanixSimulator({SANDBOX_TOKEN: SANDBOX_USER}, workspace_id=SANDBOX_ID)
    async with prod.serve(), sandbox.serve():
        yield prod, sandbox
    assert_tokens_stayed_home(prod, sandbox)


def assert_tokens_stayed_home(prod: LeanixSimulator, sandbox: LeanixSimulator) -> None:
    """Each simulator was offered its own workspace's API token only, and every bearer
    token it saw was one it handed out."""
    assert set(prod.presented) <= {PROD_TOKEN}
    assert set(sandbox.presented) <= {SANDBOX_TOKEN}
    for sim in (prod, sandbox):
        assert sim.requests["unknown_bearer"] == 0 and sim.requests["unauthorized"] == 0


@pytest.fixture
def two(
    make_settings: Callable[..., Settings],
    sims: tuple[LeanixSimulator, LeanixSimulator],
    tmp_path: Path,
) -> Callable[..., Settings]:
    """Settings serving both workspaces; `delivery` PUSH or PULL."""
    prod, sandbox = sims

    def make(delivery: str = "PULL") -> Settings:
        production = {"name": "production", "id": PROD_ID, "base_url": prod.base_url,
                      "api_token": PROD_TOKEN, "authorization": [PROD_AUTH]}  # fmt: skip
        other = {"name": "sandbox", "id": SANDBOX_ID, "base_url": sandbox.base_url,
                 "api_token": SANDBOX_TOKEN, "authorization": [SANDBOX_AUTH]}  # fmt: skip
        settings = make_settings(
            store={"url": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"},
            leanix={"workspaces": [production, other]},
            sources={"leanix": {"authorization": []}},  # the single-workspace keys stay unset
            subscriptions={"leanix_delivery": delivery},
            automation={"callback_base_url": "https://bridge.example.com"},
            leanix_pull={"timeout_s": 1, "lease_s": 1.0, "retry_s": 0.1},
        )
        return replace(settings, rules=(RULE,))

    return make


@pytest.fixture
async def bus(settings: Settings, inspector: Inspector) -> AsyncIterator[Broker]:
    broker = Broker(settings.amqp)
    await broker.start()
    await broker.wait_ready(15)
    yield broker
    await broker.close()


async def run(settings: Settings, action: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert await subscriptions(settings, action) == 0
    out = capsys.readouterr().out
    assert not any(secret in out for secret in SECRETS)  # secrets never printed
    return out


def section(out: str, workspace: str) -> str:
    """The lines printed under `[workspace <name>]`."""
    after = out.split(f"[workspace {workspace}]\n", 1)[1]
    return after.split("\n[", 1)[0]


async def test_apply_makes_each_workspaces_pull_subscription_and_each_puller_finds_its_own(
    sims: tuple[LeanixSimulator, LeanixSimulator],
    two: Callable[..., Settings],
    settings: Settings,
    bus: Broker,
    db: Database,
    inspector: Inspector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prod, sandbox = sims
    configured = two("PULL")
    planned = await run(configured, "plan", capsys)
    for name in ("production", "sandbox"):
        part = section(planned, name)
        assert 'leanix subscription "leanix-bridge": create' in part
        assert "pulled: the id LeanIX gives it, found by its identifier" in part
    assert not prod.subscription_api.items and not sandbox.subscription_api.items

    await run(configured, "apply", capsys)
    ((prod_id, made_in_prod),) = prod.subscription_api.items.items()
    ((sandbox_id, made_in_sandbox),) = sandbox.subscription_api.items.items()
    assert made_in_prod["userId"] == PROD_USER and made_in_sandbox["userId"] == SANDBOX_USER
    assert made_in_prod["deliveryType"] == made_in_sandbox["deliveryType"] == "PULL"
    again = await run(configured, "plan", capsys)
    assert f"pulled: subscription id {prod_id} (found by" in section(again, "production")
    assert f"pulled: subscription id {sandbox_id} (found by" in section(again, "sandbox")
    assert again.rstrip().endswith("no changes")

    await inspector.observe()
    async with aiohttp.ClientSession() as session:
        pullers = pulling.build(configured, session, bus, db)
        assert len({p.lease for p in pullers}) == 2  # one lease per workspace
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run(stop)) for p in pullers]
        try:
            prod.pull_event(prod.add_fact_sheet("Application", "CRM"))
            sandbox.pull_event(sandbox.add_fact_sheet("Application", "CRM (sandbox)"))
            sources = {decode((await inspector.next_event()).body).source for _ in range(2)}
            assert sources == {f"leanix:{PROD_ID}", f"leanix:{SANDBOX_ID}"}
            await eventually(
                lambda: (
                    prod.pull.feeds[prod_id].cursor == sandbox.pull.feeds[sandbox_id].cursor == 1
                ),
                10,
                "both cursors committed",
            )
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await asyncio.gather(*tasks)
    assert {p.subscription_id for p in pullers} == {prod_id, sandbox_id}  # no id configured
    assert prod.presented[PROD_TOKEN] and sandbox.presented[SANDBOX_TOKEN]


async def test_apply_gives_each_workspaces_push_subscription_its_own_authorization(
    sims: tuple[LeanixSimulator, LeanixSimulator],
    two: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    prod, sandbox = sims
    out = await run(two("PUSH"), "apply", capsys)
    assert "[workspace production]" in out and "[workspace sandbox]" in out
    ((made_in_prod),) = prod.subscription_api.items.values()
    ((made_in_sandbox),) = sandbox.subscription_api.items.values()
    assert made_in_prod["authorizationHeader"] == PROD_AUTH
    assert made_in_sandbox["authorizationHeader"] == SANDBOX_AUTH
    assert (await run(two("PUSH"), "apply", capsys)).rstrip().endswith("no changes")


async def test_reconcile_each_workspace_or_the_one_named(
    sims: tuple[LeanixSimulator, LeanixSimulator],
    two: Callable[..., Settings],
    inspector: Inspector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prod, sandbox = sims
    configured = two("PULL")
    in_prod = prod.add_fact_sheet("Application", "CRM", tags=["automate"])
    in_sandbox = sandbox.add_fact_sheet("Application", "CRM (sandbox)", tags=["automate"])
    since = datetime.now(UTC) - timedelta(hours=1)
    await inspector.observe()

    assert await reconcile.run_command(configured, since, publish=True) == 0
    out = capsys.readouterr().out
    assert "1 published" in section(out, "production") and "1 published" in section(out, "sandbox")
    events = [decode((await inspector.next_event()).body) for _ in range(2)]
    by_subject = {event.subject: event.source for event in events}
    assert by_subject == {in_prod: f"leanix:{PROD_ID}", in_sandbox: f"leanix:{SANDBOX_ID}"}

    asked_prod = prod.requests["graphql"]
    assert await reconcile.run_command(configured, since, False, workspace="sandbox") == 0
    out = capsys.readouterr().out
    assert "[workspace production]" not in out and in_sandbox in section(out, "sandbox")
    assert prod.requests["graphql"] == asked_prod  # the one named only


async def test_reconcile_of_an_unknown_workspace_names_the_known_ones(
    two: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exception, match="production, sandbox") as raised:
        await reconcile.run_command(two(), datetime.now(UTC), False, workspace="staging")
    assert "--workspace" in str(raised.value)


async def test_a_pulled_event_naming_another_workspace_is_refused_and_passed(
    sims: tuple[LeanixSimulator, LeanixSimulator],
    two: Callable[..., Settings],
    bus: Broker,
    db: Database,
    inspector: Inspector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The sandbox's subscription delivering an event that claims to be production's: as a
    PUSH with the sandbox's Authorization value would get a 401, it is not published (and
    does not hold the cursor back)."""
    _, sandbox = sims
    configured = two("PULL")
    await run(configured, "apply", capsys)
    (sandbox_id,) = sandbox.subscription_api.items
    fact_sheet = sandbox.add_fact_sheet("Application", "CRM (sandbox)")
    forged = sandbox.event(fact_sheet) | {"workspaceId": PROD_ID}
    sandbox.pull.append(forged)
    genuine = sandbox.pull_event(fact_sheet)
    await inspector.observe()
    async with aiohttp.ClientSession() as session:
        pullers = pulling.build(configured, session, bus, db)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run(stop)) for p in pullers]
        try:
            event = decode((await inspector.next_event()).body)
            feed = sandbox.pull.feeds[sandbox_id]
            await eventually(lambda: feed.cursor == 2, 10, "the cursor passed both")
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await asyncio.gather(*tasks)
    assert event.source == f"leanix:{SANDBOX_ID}"
    assert event.data["id"] == genuine["id"]  # type: ignore[index]
    assert inspector.observed.empty()  # the forged one was never published
