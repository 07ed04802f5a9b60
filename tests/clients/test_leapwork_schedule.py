"""Leapwork schedule variables: read from the controller, and checked at start-up.

Leapwork drops, without a word, every runNow variable the schedule does not define; the
worker reads each Leapwork rule's schedule when it starts and logs what is missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import structlog

from service.automation import preflight
from service.automation.rules import load as load_rules
from service.errors import VendorRejected
from service.resources import Resources
from service.settings import from_mapping
from service.vendors.leapwork.client import LeapworkClient, variable_names
from service.vendors.leapwork.settings import LeapworkApi
from service.vendors.leapwork.simulator import LeapworkSimulator
from tests.clients.support import wait_until

KEY = "Mo87Nc4qDAtzJNDb"
TOKEN = "leapwork-callback-token-0c1d"
SIGNING_KEY = "schedule-test-signing-key-0123456789abcdef"  # 32+ characters
OURS = ["correlationId", "callbackUrl", "callbackToken"]
UNKNOWN = "0d9e4c7a-5b1f-4e2d-8c3b-a6f7e8d9c0b1"  # a GUID no schedule has


@pytest.fixture
async def sim() -> AsyncIterator[LeapworkSimulator]:
    simulator = LeapworkSimulator(access_key=KEY, run_duration_s=0.1)
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(sim: LeapworkSimulator, session: aiohttp.ClientSession) -> LeapworkClient:
    settings = LeapworkApi(base_url=sim.base_url, access_key=KEY, timeout_s=2.0)
    return LeapworkClient(session, settings)


def resources(
    client: LeapworkClient, *schedule_ids: str, callbacks: bool = True, dry_run: bool = False
) -> Resources:
    """What the check reads: the Leapwork client, the rules and the callback settings."""
    rules = [
        {
            "name": f"regression-{n}",
            "on": "leanix.factsheet.updated",
            "dry_run": dry_run,
            "start": {
                "vendor": "leapwork",
                "target": {"schedule_id": schedule_id},
                "inputs": {"factSheetId": "{{ fact_sheet.id }}", f"extra{n}": "x"},
            },
        }
        for n, schedule_id in enumerate(schedule_ids)
    ]
    tree: dict[str, Any] = {
        "rules": rules,
        "sources": {"callback_signing_keys": [SIGNING_KEY]},
        "automation": {"callback_base_url": "https://bridge.example.com" if callbacks else ""},
    }
    settings = from_mapping(tree)
    rules = load_rules(settings.rules)
    found: Any = Resources(settings, None, None, client.session, None, {"leapwork": client}, rules)  # type: ignore[arg-type]
    return found  # type: ignore[no-any-return]


# --- the client and the simulator ------------------------------------------------------------


async def test_the_variables_a_schedule_defines_are_read(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    defined = sim.add_schedule("Smoke", variables=["correlationId", "factSheetId"])
    documented = sim.add_schedule("Nightly")  # Leapwork's documented answer lists none

    assert await client.defined_variables(defined) == {"correlationId", "factSheetId"}
    assert await client.defined_variables(documented) is None


async def test_reading_an_unknown_schedule_is_rejected(client: LeapworkClient) -> None:
    with pytest.raises(VendorRejected) as caught:
        await client.defined_variables("no-such-schedule")
    assert caught.value.status == 404


async def test_the_simulator_drops_variables_the_schedule_does_not_define(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    target = {"schedule_id": sim.add_schedule("Smoke", variables=["factSheetId"])}
    url = "http://127.0.0.1:9/callbacks/leapwork"
    inputs = {"factSheetId": "fs-1", "name": "CRM"}
    run = await client.start(
        target, inputs, correlation_id="c-1", callback_url=url, callback_secret=TOKEN
    )

    assert sim.runs[run.run_id].variables == {"factSheetId": "fs-1"}  # the rest: gone, unsaid


@pytest.mark.parametrize(
    ("schedule", "names"),
    [
        ({"Variables": [{"$id": "2", "Name": "a", "Value": ""}, {"Key": "b"}]}, {"a", "b"}),
        ({"Variables": ["a", "b", "", 7, {"Value": "x"}]}, {"a", "b"}),
        ({"ScheduleVariables": {"a": "1", "b": ""}}, {"a", "b"}),
        ({"Variables": []}, set()),
        ({"Variables": None, "ScheduleVariables": ["a"]}, {"a"}),
        ({"Variables": "a,b"}, None),
        ({"Title": "UAT", "Type": "ScheduleInfo"}, None),
        (["not", "a", "schedule"], None),
    ],
)
def test_variable_names_are_read_from_any_shape_seen(schedule: Any, names: set[str] | None) -> None:
    assert variable_names(schedule) == names


# --- the start-up check ----------------------------------------------------------------------


async def test_a_schedule_without_our_variables_is_named_with_the_missing_ones(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    bare = sim.add_schedule("Bare", variables=["factSheetId"])
    with structlog.testing.capture_logs() as logs:
        await preflight.check_targets(resources(client, bare))

    [warning] = [e for e in logs if e["event"] == "leapwork.schedule_variables_missing"]
    assert warning["log_level"] == "warning"
    assert warning["schedule_id"] == bare
    assert warning["rules"] == ["regression-0"]
    assert warning["missing"] == sorted(["extra0", *OURS])
    assert TOKEN not in str(logs)


async def test_a_schedule_defining_every_variable_passes_quietly(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    full = sim.add_schedule("Full", variables=["factSheetId", "extra0", *OURS])
    no_callbacks = sim.add_schedule("Polled", variables=["factSheetId", "extra0", "correlationId"])
    with structlog.testing.capture_logs() as logs:
        await preflight.check_targets(resources(client, full))
        await preflight.check_targets(resources(client, no_callbacks, callbacks=False))
    assert logs == []


async def test_one_read_per_schedule_and_none_for_dry_runs(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    shared = sim.add_schedule("Shared", variables=[])
    with structlog.testing.capture_logs() as logs:
        await preflight.check_targets(resources(client, shared, shared))
        await preflight.check_targets(resources(client, shared, dry_run=True))
    [warning] = logs
    assert warning["rules"] == ["regression-0", "regression-1"]
    assert warning["missing"] == sorted(["factSheetId", "extra0", "extra1", *OURS])


async def test_a_controller_that_lists_no_variables_is_said_to_be_unverified(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    documented = sim.add_schedule("Documented")
    with structlog.testing.capture_logs() as logs:
        await preflight.check_targets(resources(client, documented))
    [entry] = logs
    assert entry["event"] == "leapwork.schedule_variables_unverified"
    assert entry["log_level"] == "info"
    assert entry["define"] == sorted(["factSheetId", "extra0", *OURS])


async def test_an_unreachable_or_unknown_schedule_is_logged_not_raised(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    sim.faults.fail(503)
    with structlog.testing.capture_logs() as logs:
        await preflight.check_targets(resources(client, sim.add_schedule("Down")))
        await preflight.check_targets(resources(client, UNKNOWN))
    assert [e["event"] for e in logs] == ["leapwork.schedule_check_failed"] * 2
    assert "503" in logs[0]["error"] and f"no schedule {UNKNOWN}" in logs[1]["error"]


async def test_no_leapwork_client_means_nothing_to_check(client: LeapworkClient) -> None:
    found = dataclasses.replace(resources(client, UNKNOWN), runners={})
    with structlog.testing.capture_logs() as logs:
        await preflight.check_targets(found)
    assert logs == []


async def test_the_check_at_start_gives_way_to_a_stopping_worker(
    sim: LeapworkSimulator, client: LeapworkClient
) -> None:
    sim.faults.hang()  # the controller never answers
    halt = asyncio.Event()
    checking = asyncio.create_task(
        preflight.check_at_start(resources(client, sim.add_schedule("Hung")), halt)
    )
    await wait_until(lambda: sim.faults.requests)  # the check is under way
    halt.set()
    await asyncio.wait_for(checking, 1.0)  # well before the client's 2 s timeout


async def test_a_crashed_check_is_logged(client: LeapworkClient) -> None:
    class Broken(LeapworkClient):
        async def defined_variables(self, schedule_id: str) -> frozenset[str] | None:
            raise RuntimeError("a bug")

    broken = Broken(client.session, LeapworkApi(access_key=KEY))
    found = dataclasses.replace(resources(client, UNKNOWN), runners={"leapwork": broken})
    with structlog.testing.capture_logs() as logs:
        await preflight.check_at_start(found, asyncio.Event())
    assert [(e["event"], e["error"]) for e in logs] == [
        ("leapwork.schedule_check_crashed", "RuntimeError('a bug')")
    ]
