"""The loop guard end to end: no echo of our own write-back starts another run.

LeanIX sends FACT_SHEET_UPDATED for every change our write-back makes. Which id its
`userId` carries (the token's `sub` or its `principal.id`) is not documented, and in
WRAPPED_EVENT mode the envelope's `userId` is optional while `payload.userId` is always
there. The simulator sends the echo in each of these shapes; each must be ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from service.simulators.lab import LEANIX_WEBHOOK_AUTH, Lab
from service.simulators.leanix import DEFAULT_USER_ID
from tests.e2e.conftest import Service, eventually, logged_statuses, received_inputs

pytestmark = pytest.mark.e2e

Start = Callable[..., Awaitable[Service]]
PRINCIPAL_ID = "0c4e5a1f-2b3d-4e6f-8a9b-1c2d3e4f5a6b"  # our principal.id, unlike our sub

SHAPES = [
    pytest.param("DEFAULT", True, "sub", id="default-sub"),
    pytest.param("DEFAULT", True, "principal.id", id="default-principal"),
    pytest.param("WRAPPED_EVENT", True, "sub", id="wrapped-sub"),
    pytest.param("WRAPPED_EVENT", True, "principal.id", id="wrapped-principal"),
    pytest.param("WRAPPED_EVENT", False, "sub", id="wrapped-no-envelope-user-sub"),
    pytest.param("WRAPPED_EVENT", False, "principal.id", id="wrapped-no-envelope-user-principal"),
]


@pytest.mark.parametrize(("payload_mode", "envelope_user_id", "claim"), SHAPES)
async def test_no_shape_of_our_write_backs_echo_starts_a_run(
    lab: Lab, service_factory: Start, payload_mode: str, envelope_user_id: bool, claim: str
) -> None:
    lab.leanix.principal_ids[DEFAULT_USER_ID] = PRINCIPAL_ID
    lab.leanix.echo_claim = claim
    url = f"{lab.service_url}/webhooks/leanix"
    lab.leanix.subscribe(url, LEANIX_WEBHOOK_AUTH, payload_mode, envelope_user_id)
    service = await service_factory([lab.rule("uipath")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Webshop")

    assert await lab.change(fact_sheet) == 202  # an architect's change: one run
    await eventually(lambda: bool(lab.leanix.comments.get(fact_sheet)), what="written back")
    await lab.leanix.drain()
    echoes = len(lab.leanix.mutations)  # one FactSheetUpdatedEvent per saved update
    assert echoes >= 1
    # The change itself went out through the same sender: 1 + echoes deliveries.
    assert [d.get("status") for d in lab.leanix.deliveries] == [202] * (1 + echoes)

    async def all_handled() -> bool:
        statuses = await logged_statuses(service.settings, fact_sheet)
        return statuses == ["handled"] * (1 + echoes)

    await eventually(all_handled, what="the change and every echo handled")
    assert len(received_inputs(lab, "uipath")) == 1
    assert len(lab.leanix.comments[fact_sheet]) == 1
