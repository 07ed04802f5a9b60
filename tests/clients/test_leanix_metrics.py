"""Run metrics into LeanIX: the Metrics API point our client posts (held to
../shared/contracts/leanix.json, PostMetricsPointV1) and the outbox's policy when LeanIX
fails: retried at the next flush while it fails transiently, dropped with a log line
when it refuses the point or keeps failing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from service.automation.reporting import run_point
from service.clients.leanix import LeanixClient
from service.clients.leanix_metrics import MetricsOutbox
from service.settings import LeanixApi, LeanixMetrics
from service.simulators.leanix import DEFAULT_API_TOKEN, DEFAULT_WORKSPACE_ID, LeanixSimulator
from service.store.runs import Run
from tests.contracts.recording import Recorder, operation_problems

RUN = Run(
    id=1, correlation_id="c-1", vendor="uipath", rule="provision", event_id="e-1",
    status="completed", started_at=1_700_000_000.0, run_id="42",
    fact_sheet_id="95fbeddd-abdf-4552-a82b-ce37c287735c", outcome="succeeded",
    completed_at=1_700_000_012.5,
)  # fmt: skip


@pytest.fixture
async def sim() -> AsyncIterator[LeanixSimulator]:
    simulator = LeanixSimulator()
    async with simulator.serve():
        yield simulator


def client_of(
    session: aiohttp.ClientSession, sim: LeanixSimulator, timeout_s: float = 30.0
) -> LeanixClient:
    settings = LeanixApi(
        base_url=sim.base_url, api_token=DEFAULT_API_TOKEN, rate_limit_rps=1e3, timeout_s=timeout_s
    )
    return LeanixClient(session, settings)


def outbox(attempts: int = 3) -> MetricsOutbox:
    return MetricsOutbox(LeanixMetrics(enabled=True, flush_interval_s=0.05, attempts=attempts))


def test_a_run_becomes_a_point_with_its_tags_and_duration() -> None:
    point = run_point(RUN, "automation_runs")
    assert point["measurement"] == "automation_runs"
    assert point["time"] == "2023-11-14T22:13:32.500Z"
    tags = {tag["k"]: tag["v"] for tag in point["tags"]}
    assert tags == {"factSheetId": RUN.fact_sheet_id, "vendor": "uipath", "rule": "provision",
                    "outcome": "succeeded"}  # fmt: skip
    assert point["fields"] == [{"k": "duration", "v": 12.5}]


async def test_the_point_posted_follows_the_contract(
    session: aiohttp.ClientSession, sim: LeanixSimulator, vendor_contract: Recorder
) -> None:
    client = client_of(session, sim)
    await client.post_metric(run_point(RUN, "automation_runs"))

    assert operation_problems(vendor_contract, "PostMetricsPointV1") == []
    [received] = sim.metrics.points
    assert received["measurement"] == "automation_runs"
    assert received["workspaceId"] == DEFAULT_WORKSPACE_ID  # from the token's claims


@pytest.mark.parametrize("status", [500, 503])
async def test_a_failing_metrics_api_gets_the_point_again_at_the_next_flush(
    session: aiohttp.ClientSession, sim: LeanixSimulator, status: int
) -> None:
    box, client = outbox(), client_of(session, sim)
    sim.metrics.fail = [status]
    box.add(client, run_point(RUN, "automation_runs"))

    with capture_logs() as logs:
        assert await box.flush() == 0
    assert len(box) == 1 and sim.metrics.points == []
    assert [e["event"] for e in logs if "metrics" in e["event"]] == ["leanix.metrics.retry_later"]
    assert await box.flush() == 1
    assert len(sim.metrics.points) == 1 and len(box) == 0


async def test_a_rate_limited_point_is_posted_once_leanix_lets_it(
    session: aiohttp.ClientSession, sim: LeanixSimulator
) -> None:
    box, client = outbox(), client_of(session, sim)
    sim.metrics.fail = [429]  # Retry-After: 1, waited out by the client's pacer

    box.add(client, run_point(RUN, "automation_runs"))
    assert await box.flush() == 1
    assert len(sim.metrics.points) == 1


async def test_a_point_that_keeps_failing_is_dropped_with_a_log_line(
    session: aiohttp.ClientSession, sim: LeanixSimulator
) -> None:
    box, client = outbox(attempts=2), client_of(session, sim)
    sim.metrics.fail = [500, 500]
    box.add(client, run_point(RUN, "automation_runs"))

    with capture_logs() as logs:
        await box.flush()
        await box.flush()
    assert len(box) == 0 and box.dropped == 1
    dropped = [e for e in logs if e["event"] == "leanix.metrics.dropped"]
    assert len(dropped) == 1 and "after 2 posts" in dropped[0]["reason"]


async def test_a_slow_metrics_api_times_out_and_the_point_waits(
    session: aiohttp.ClientSession, sim: LeanixSimulator
) -> None:
    client = client_of(session, sim, timeout_s=0.2)
    await client.authenticate()
    box = outbox()
    sim.metrics.latency_s = 1.0
    box.add(client, run_point(RUN, "automation_runs"))

    assert await box.flush() == 0
    assert len(box) == 1
    sim.metrics.latency_s = 0.0
    assert await box.flush() == 1


async def test_a_refused_point_is_dropped_at_once(
    session: aiohttp.ClientSession, sim: LeanixSimulator
) -> None:
    box, client = outbox(), client_of(session, sim)
    await client.authenticate()
    sim.faults.fail(400)  # LeanIX refuses the point: sending it again would not help
    box.add(client, run_point(RUN, "automation_runs"))

    with capture_logs() as logs:
        assert await box.flush() == 0
    assert len(box) == 0 and box.dropped == 1
    assert any(e["event"] == "leanix.metrics.dropped" for e in logs)


async def test_the_outbox_holds_at_most_max_pending_points(
    session: aiohttp.ClientSession, sim: LeanixSimulator
) -> None:
    box = MetricsOutbox(LeanixMetrics(enabled=True, max_pending=2))
    client = client_of(session, sim)
    for _ in range(3):
        box.add(client, run_point(RUN, "automation_runs"))
    assert len(box) == 2 and box.dropped == 1
