"""Run metrics, end to end: every finished run posts a point to LeanIX's Metrics API, and
a Metrics API that fails never holds up or fails the run's write-back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from service.simulators.lab import Lab
from tests.e2e.conftest import Service, eventually
from tests.e2e.test_loop import written_back

pytestmark = pytest.mark.e2e

Start = Callable[..., Awaitable[Service]]
METRICS = {"leanix": {"metrics": {"enabled": True, "flush_interval_s": 0.05, "attempts": 2}}}


async def test_a_finished_run_posts_its_point(lab: Lab, service_factory: Start) -> None:
    await service_factory([lab.rule("uipath")], clients=METRICS)
    fact_sheet = lab.leanix.add_fact_sheet("Application", "AC Management")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: lab.leanix.metrics.points, what="the run's point")

    [point] = lab.leanix.metrics.points
    tags = {tag["k"]: tag["v"] for tag in point["tags"]}
    assert point["measurement"] == "automation_runs"
    assert tags["factSheetId"] == fact_sheet and tags["vendor"] == "uipath"
    assert tags["outcome"] == "succeeded" and tags["rule"]
    [duration] = point["fields"]
    assert duration["k"] == "duration" and duration["v"] >= 0


@pytest.mark.parametrize("fault", ["500", "429", "slow"])
async def test_a_failing_metrics_api_leaves_the_write_back_done(
    lab: Lab, service_factory: Start, fault: str
) -> None:
    if fault == "slow":
        lab.leanix.metrics.latency_s = 60.0  # beyond the client's timeout: never answered
        metrics = {"leanix": {**METRICS["leanix"], "timeout_s": 0.5}}
    else:
        lab.leanix.metrics.fail = [int(fault)] * 10
        metrics = METRICS
    await service_factory([lab.rule("uipath")], clients=metrics)
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Billing")

    with capture_logs() as logs:
        assert await lab.change(fact_sheet) == 202
        await eventually(lambda: written_back(lab, fact_sheet, "uipath-done"), what="write-back")
        if fault == "500":  # tried `attempts` times, then dropped with a log line
            await eventually(
                lambda: any(e["event"] == "leanix.metrics.dropped" for e in logs),
                what="the point dropped",
            )
    assert lab.leanix.metrics.points == []
