"""The `http` platform end to end: a LeanIX event -> a rule with vendor "http" -> a run
started on the simulated endpoint -> its end, by signed callback, by the run's own token,
by polling the Location the start answered, or in the start answer itself -> the Fact
Sheet written back on the simulated LeanIX. The service runs whole (receiver, worker,
poller) over a real RabbitMQ and a real store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.simulators.lab import Lab
from tests.e2e.conftest import Service, eventually

pytestmark = pytest.mark.e2e

Start = Callable[..., Awaitable[Service]]
NO_POLLING = {"poll_initial_s": 60.0, "poll_max_s": 60.0}  # only a callback can complete it


def tags(lab: Lab, fact_sheet_id: str) -> set[str]:
    return {tag["name"] for tag in lab.leanix.fact_sheets[fact_sheet_id].tags}


def comments(lab: Lab, fact_sheet_id: str) -> list[str]:
    return [c["message"] for c in lab.leanix.comments.get(fact_sheet_id, [])]


def written_back(lab: Lab, fact_sheet_id: str, tag: str) -> bool:
    return tag in tags(lab, fact_sheet_id) and bool(comments(lab, fact_sheet_id))


def rule(lab: Lab, **target: Any) -> dict[str, Any]:
    raw = lab.rule("http")
    raw["start"] = {**raw["start"], "target": {**raw["start"]["target"], **target}}
    return raw


async def test_a_signed_callback_completes_the_run_and_it_is_written_back(
    lab: Lab, service_factory: Start
) -> None:
    lab.http.next_outcome("succeeded", {"hostname": "crm-01"})
    await service_factory([lab.rule("http")], automation=NO_POLLING)
    fact_sheet = lab.leanix.add_fact_sheet("Application", "CRM")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "http-done"), what="written back")

    [run] = lab.http.runs.values()
    assert run.body["factSheetId"] == fact_sheet
    assert run.body["callbackUrl"].endswith("/callbacks/http")
    assert [c["status"] for c in lab.http.callbacks] == [202]
    assert "succeeded" in comments(lab, fact_sheet)[0]


async def test_a_flow_that_cannot_sign_calls_back_with_the_runs_token(
    lab: Lab, service_factory: Start
) -> None:
    lab.http.callback_secret = None  # e.g. Power Automate: it sends the bearer token back
    await service_factory([lab.rule("http")], automation=NO_POLLING)
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Billing")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "http-done"), what="written back")

    [run] = lab.http.runs.values()
    assert len(run.body["callbackToken"]) == 43


async def test_without_a_callback_the_status_url_is_polled_to_failure(
    lab: Lab, service_factory: Start
) -> None:
    lab.http.faults.drop_callbacks = True
    lab.http.next_outcome("failed")
    await service_factory([lab.rule("http")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "HR Portal")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "http-failed"), what="written back")

    assert "failed" in comments(lab, fact_sheet)[0]
    assert [c["outcome"] for c in lab.http.callbacks] == ["dropped"]


async def test_a_synchronous_answer_is_written_back_at_once(
    lab: Lab, service_factory: Start
) -> None:
    url = lab.http.add_flow("lookup", mode="sync")
    await service_factory([rule(lab, url=url)], automation=NO_POLLING)
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Intranet")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "http-done"), what="written back")

    assert [c["outcome"] for c in lab.http.callbacks] == []  # the answer was the outcome


async def test_a_hostile_fact_sheet_name_stays_in_the_path_and_body(
    lab: Lab, service_factory: Start
) -> None:
    lab.http.add_flow("apps")
    url = f"{lab.http.base_url}/flows/apps/{{name}}?id={{factSheetId}}"
    await service_factory([rule(lab, url=url)])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "../../_sim/reset?x=1#@evil.example")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "http-done"), what="written back")

    [run] = lab.http.runs.values()
    assert run.path == "/flows/apps/..%2F..%2F_sim%2Freset%3Fx%3D1%23%40evil.example"
    assert run.query == {"id": fact_sheet}
    assert "name" not in run.body  # it went into the URL only


@pytest.mark.parametrize("status", [503, 429])
async def test_endpoint_errors_on_start_are_retried_once_it_recovers(
    lab: Lab, service_factory: Start, status: int
) -> None:
    lab.http.faults.retry_after_s = 0
    lab.http.faults.fail(status, times=2)
    await service_factory([lab.rule("http")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "ERP")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "http-done"), what="written back")
    assert len(lab.http.runs) == 1
