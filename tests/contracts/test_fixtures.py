"""Every webhook fixture in tests/fixtures against the contract's payload schema, and our
receiver's verifiers against the contracts' `signature` of each sender."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from service.receiver.sources import build
from service.settings import from_mapping
from tests.contracts.contract import contract, sign
from tests.senders import FIXTURES, fixture

LEANIX_DEFAULT = "FACT_SHEET_CREATED"  # the contract's DEFAULT payload webhook begins so
LEANIX_WRAPPED = "any event, payloadMode WRAPPED_EVENT"
# Each fixture: (vendor, the contract's webhook) or why no contract describes it.
FIXTURE_CONTRACTS: dict[str, tuple[str, str] | str] = {
    "leanix-factsheet-created.json": ("leanix", LEANIX_DEFAULT),
    "leanix-factsheet-updated.json": ("leanix", LEANIX_DEFAULT),
    "leanix-wrapped.json": ("leanix", LEANIX_WRAPPED),
    # The contract: a callback script's body "may not match the default shape".
    "leanix-callback-reshaped.json": "a body rewritten by a LeanIX callback script",
    "uipath-job-completed.json": ("uipath", "job.completed"),
    "uipath-job-stopped.json": ("uipath", "job.stopped"),
    "robocorp-process-run-completed.json": ("robocorp", "process_run.completed"),
    # Leapwork and Workato send no webhooks: these are our own documented bodies (README).
    "leapwork-run-finished.json": "our Leapwork callback body",
    "workato-job-completed.json": "our Workato callback body",
}


def test_every_fixture_is_classified() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(FIXTURE_CONTRACTS)


@pytest.mark.parametrize(
    "name", [name for name, spec in FIXTURE_CONTRACTS.items() if isinstance(spec, tuple)]
)
def test_the_fixture_follows_the_contract(name: str) -> None:
    vendor, event = FIXTURE_CONTRACTS[name]
    payload: dict[str, Any] = orjson.loads(fixture(name))
    assert contract(vendor).payload_problems(event, payload) == []
    if event == LEANIX_WRAPPED:  # the wrapped event is a DEFAULT payload
        assert contract(vendor).payload_problems(LEANIX_DEFAULT, payload["payload"]) == []


@pytest.mark.parametrize(
    ("vendor", "event", "fixture_name"),
    [
        ("uipath", "job.completed", "uipath-job-completed.json"),
        ("robocorp", "process_run.completed", "robocorp-process-run-completed.json"),
        ("leanix", LEANIX_DEFAULT, "leanix-factsheet-created.json"),
    ],
)
def test_our_receiver_verifies_what_the_contract_says_is_sent(
    vendor: str, event: str, fixture_name: str
) -> None:
    secret = f"{vendor}-contract-secret"
    credential = {"authorization": [secret]} if vendor == "leanix" else {"secrets": [secret]}
    settings = from_mapping({"sources": {vendor: credential}})
    [source] = [s for s in build(settings.sources) if s.name == vendor]
    assert source.verifier is not None
    body = fixture(fixture_name)
    spec = contract(vendor).webhook(event)["signature"]
    if spec is None:  # LeanIX signs nothing: the subscription's Authorization, verbatim
        headers = CIMultiDict({"Authorization": secret})
    else:
        headers = CIMultiDict({str(spec["header"]): sign(spec, secret, body)})
    source.verifier.verify(headers, body)  # raises Unauthorized if we read it otherwise
