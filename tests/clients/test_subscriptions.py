"""`subscriptions plan/apply` against the LeanIX, UiPath and Robocorp simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest

from service.settings import PullSettings, Settings, from_mapping
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.subscriptions_cli import run_command
from service.vendors.robocorp.simulator import RobocorpSimulator
from service.vendors.uipath.simulator import UipathSimulator
from tests.conftest import settings_tree
from tests.contracts.recording import Recorder

AUTH = "Basic c3Vic2NyaWJlcjpzM2NyZXQ="
ROTATED = "Basic cm90YXRlZDpuZXctc2VjcmV0"
UIPATH_SECRET = "uipath-webhook-secret-0123456789"
KEY = "rc-wskey-subs"
WORKSPACE = "ws-subs"
RULES = [
    {
        "name": "provision",
        "on": ["leanix.factsheet.created", "leanix.factsheet.updated"],
        "start": {"vendor": "uipath", "target": {"release_key": "r-1", "folder_id": 1}},
    },
    {
        "name": "scan",
        "on": ["leanix.factsheet.updated"],
        "start": {"vendor": "robocorp", "target": {"process_id": "p-1"}},
    },
]


@pytest.fixture
async def sims() -> AsyncIterator[tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator]]:
    leanix, uipath = LeanixSimulator(), UipathSimulator(client_secret="ui-secret")
    robocorp = RobocorpSimulator(api_key=KEY, workspace_id=WORKSPACE)
    robocorp.add_process("scan", "p-1")
    async with leanix.serve(), uipath.serve(), robocorp.serve():
        yield leanix, uipath, robocorp


@pytest.fixture
def configure(
    sims: tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator],
    prefix: str,
) -> Callable[..., Settings]:
    leanix, uipath, robocorp = sims

    def make(
        base: str = "https://bridge.example.com",
        subscriptions: dict[str, Any] | None = None,
        **sources: Any,
    ) -> Settings:
        clients = {
            "leanix": {"base_url": leanix.base_url, "api_token": DEFAULT_API_TOKEN},
            "uipath": {
                "base_url": uipath.orchestrator_url,
                "identity_url": uipath.identity_url,
                "client_id": uipath.client_id,
                "client_secret": "ui-secret",
                "folder_id": 1,
            },
            "robocorp": {
                "base_url": f"{robocorp.base_url}/api/v1",
                "api_key": KEY,
                "workspace_id": WORKSPACE,
            },
        }
        given = {
            "leanix": {"authorization": [AUTH]},
            "uipath": {"secrets": [UIPATH_SECRET]},
            **sources,
        }
        tree = settings_tree(prefix)
        tree["sources"] |= given
        tree |= {"clients": clients, "automation": {"callback_base_url": base}, "rules": RULES}
        tree["subscriptions"] = subscriptions or {}
        return from_mapping(tree)

    return make


async def run(settings: Settings, action: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert await run_command(settings, action) == 0
    return capsys.readouterr().out


async def test_plan_shows_what_is_missing_and_changes_nothing(
    sims: tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator],
    configure: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    leanix, uipath, robocorp = sims
    out = await run(configure(), "plan", capsys)
    assert 'leanix subscription "leanix-bridge": create' in out
    assert '+ targetUrl: "https://bridge.example.com/webhooks/leanix"' in out
    assert '[["pathfinder","FACT_SHEET_CREATED"],["pathfinder","FACT_SHEET_UPDATED"]]' in out
    assert 'uipath webhook "leanix-bridge": create' in out
    assert "robocorp webhook for process p-1: create" in out
    assert "3 to create, 0 to update, 0 unchanged" in out
    assert AUTH not in out and UIPATH_SECRET not in out
    assert not leanix.subscription_api.items and not uipath.webhooks
    assert not robocorp.webhooks.hooks


async def test_apply_creates_then_a_second_apply_changes_nothing(
    sims: tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator],
    configure: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
    vendor_contract: Recorder,
) -> None:
    leanix, uipath, robocorp = sims
    settings = configure()
    out = await run(settings, "apply", capsys)
    assert "3 created, 0 updated, 0 unchanged" in out
    (subscription,) = leanix.subscription_api.items.values()
    assert subscription["targetUrl"] == "https://bridge.example.com/webhooks/leanix"
    assert subscription["authorizationHeader"] == AUTH
    assert subscription["deliveryType"] == "PUSH" and subscription["ignoreError"] is False
    (hook,) = uipath.webhooks
    assert hook.url == "https://bridge.example.com/callbacks/uipath"
    assert hook.secret == UIPATH_SECRET and hook.events >= {"job.completed", "job.faulted"}
    (rc_hook,) = robocorp.webhooks.hooks.values()
    assert rc_hook["endpoint"] == "https://bridge.example.com/callbacks/robocorp"
    assert "generated anew by the platform" in out  # its secret: Control Room made it

    writes = leanix.subscription_api.writes
    again = await run(settings, "apply", capsys)
    assert again.rstrip().endswith("no changes")
    assert leanix.subscription_api.writes == writes and len(uipath.webhooks) == 1
    # Orchestrator gives no Secret back; Control Room's is not among ours (yet).
    assert "! Secret: set, cannot be compared" in again
    assert "! secret: differs: Control Room generates webhook secrets" in again
    assert rc_hook["secret"] not in again
    checked = {(e.vendor, e.request.method) for e in vendor_contract.settled()}
    assert {("leanix", "POST"), ("uipath", "POST"), ("robocorp", "POST")} <= checked


async def test_apply_updates_only_what_differs(
    sims: tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator],
    configure: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    leanix, uipath, robocorp = sims
    await run(configure(), "apply", capsys)
    (rc_hook,) = robocorp.webhooks.hooks.values()
    known = configure(robocorp={"secrets": [rc_hook["secret"]]})
    assert (await run(known, "plan", capsys)).rstrip().endswith("no changes")

    rotated = configure(leanix={"authorization": [ROTATED]})
    out = await run(rotated, "plan", capsys)
    assert 'leanix subscription "leanix-bridge": update' in out
    assert "~ authorizationHeader: (secret) differs" in out and ROTATED not in out
    assert "1 to create" not in out and "0 to create, 1 to update, 2 unchanged" in out
    await run(rotated, "apply", capsys)
    (subscription,) = leanix.subscription_api.items.values()
    assert subscription["authorizationHeader"] == ROTATED

    moved = configure(base="https://new.example.com", leanix={"authorization": [ROTATED]})
    out = await run(moved, "apply", capsys)
    assert "0 created, 3 updated, 0 unchanged" in out
    assert '~ Url: "https://bridge.example.com/callbacks/uipath" -> ' in out
    (hook,) = uipath.webhooks
    assert hook.url == "https://new.example.com/callbacks/uipath"
    (replaced,) = robocorp.webhooks.hooks.values()
    assert replaced["endpoint"] == "https://new.example.com/callbacks/robocorp"
    assert (await run(moved, "plan", capsys)).count(": no changes") == 3


async def test_pull_delivery_has_no_target_and_no_secret(
    sims: tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator],
    configure: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    leanix, _, _ = sims
    await run(configure(subscriptions={"leanix_delivery": "PULL"}), "apply", capsys)
    (subscription,) = leanix.subscription_api.items.values()
    assert subscription["deliveryType"] == "PULL"
    assert subscription["targetUrl"] is None and subscription["authorizationHeader"] is None


async def test_a_pull_plan_shows_the_subscription_id_the_puller_will_use(
    sims: tuple[LeanixSimulator, UipathSimulator, RobocorpSimulator],
    configure: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    leanix, _, _ = sims
    pulled = configure(subscriptions={"leanix_delivery": "PULL"})
    assert "pulled: the id LeanIX gives it" in await run(pulled, "plan", capsys)
    await run(pulled, "apply", capsys)
    (made,) = leanix.subscription_api.items
    assert f"pulled: subscription id {made} (found by its identifier)" in await run(
        pulled, "plan", capsys
    )
    overridden = replace(pulled, leanix_pull=PullSettings(subscription_id="s-elsewhere"))
    out = await run(overridden, "plan", capsys)
    assert "pulled: subscription id s-elsewhere (configured" in out
    assert f"! not this one ({made})" in out
