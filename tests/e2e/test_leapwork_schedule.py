"""A Leapwork schedule that does not define our variables: read at start-up, still polled.

Leapwork drops every runNow variable the schedule does not define, so such a schedule's
flow never learns where to call back. The worker reads the schedule when it starts (the
warning it logs is asserted in tests/clients/test_leapwork_schedule.py), and the run
completes by polling.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from service.simulators.lab import Lab
from tests.e2e.conftest import Service, eventually

pytestmark = pytest.mark.e2e

Start = Callable[..., Awaitable[Service]]


async def test_a_schedule_without_our_variables_is_read_at_start_and_its_run_polled(
    lab: Lab, service_factory: Start
) -> None:
    bare = lab.leapwork.add_schedule("Bare", ["Login"], variables=["factSheetId", "name"])
    rule = lab.rule("leapwork")
    rule["start"] = {**rule["start"], "target": {"schedule_id": bare}}
    await service_factory([rule])
    await eventually(lambda: lab.leapwork.schedule_reads >= 1, what="the schedule read")

    fact_sheet = lab.leanix.add_fact_sheet("Application", "Billing")
    assert await lab.change(fact_sheet) == 202
    await eventually(
        lambda: "leapwork-done" in {t["name"] for t in lab.leanix.fact_sheets[fact_sheet].tags},
        what="written back by polling",
    )
    [run] = lab.leapwork.runs.values()
    assert run.variables == {"factSheetId": fact_sheet, "name": "Billing"}
    assert lab.leapwork.callbacks == []  # the flow had no callbackUrl: it could not call
