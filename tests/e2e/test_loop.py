"""The loop, per platform: LeanIX event -> run started -> completion -> Fact Sheet updated."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.simulators.lab import VENDORS, Lab
from service.simulators.leanix import DEFAULT_USER_ID
from tests.e2e.conftest import Service, drained, eventually, logged_statuses, received_inputs

pytestmark = pytest.mark.e2e

Start = Callable[..., Awaitable[Service]]
SOMEONE = "9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"  # a LeanIX user who is not us


def tags(lab: Lab, fact_sheet_id: str) -> set[str]:
    return {tag["name"] for tag in lab.leanix.fact_sheets[fact_sheet_id].tags}


def comments(lab: Lab, fact_sheet_id: str) -> list[str]:
    return [c["message"] for c in lab.leanix.comments.get(fact_sheet_id, [])]


def written_back(lab: Lab, fact_sheet_id: str, tag: str) -> bool:
    """The whole write-back landed: the outcome's tag and the comment (written last)."""
    return tag in tags(lab, fact_sheet_id) and bool(comments(lab, fact_sheet_id))


@pytest.mark.parametrize("vendor", VENDORS)
async def test_event_starts_a_run_whose_outcome_is_written_back(
    lab: Lab, service_factory: Start, vendor: str
) -> None:
    await service_factory([lab.rule(vendor)])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "AC Management")

    assert await lab.change(fact_sheet) == 202
    await eventually(
        lambda: written_back(lab, fact_sheet, f"{vendor}-done"), what="the success tag"
    )

    assert received_inputs(lab, vendor)[0]["factSheetId"] == fact_sheet
    assert received_inputs(lab, vendor)[0]["name"] == "AC Management"
    assert len(received_inputs(lab, vendor)) == 1
    note = comments(lab, fact_sheet)
    assert len(note) == 1
    assert note[0].startswith(f"{vendor} run ")
    assert "succeeded" in note[0]


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_failed_run_is_written_back_as_failed(
    lab: Lab, service_factory: Start, vendor: str
) -> None:
    lab.platforms[vendor].fail_next_run()
    await service_factory([lab.rule(vendor)])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Billing")

    assert await lab.change(fact_sheet) == 202
    await eventually(
        lambda: written_back(lab, fact_sheet, f"{vendor}-failed"), what="the failure tag"
    )
    assert f"{vendor}-done" not in tags(lab, fact_sheet)
    assert "failed" in comments(lab, fact_sheet)[0]


@pytest.mark.parametrize("vendor", VENDORS)
async def test_a_lost_callback_is_made_up_for_by_polling(
    lab: Lab, service_factory: Start, vendor: str
) -> None:
    # Workato: the lab's rule names the recipe function's recipe_id, whose jobs are polled.
    getattr(lab, vendor).faults.drop_callbacks = True
    lab.uipath.disable_webhook()
    await service_factory([lab.rule(vendor)])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "HR Portal")

    assert await lab.change(fact_sheet) == 202
    await eventually(
        lambda: written_back(lab, fact_sheet, f"{vendor}-done"), what="written back by polling"
    )
    assert len(comments(lab, fact_sheet)) == 1


@pytest.mark.parametrize("title_carries_id", [False, True], ids=["job-not-found", "no-recipe-id"])
async def test_a_workato_run_that_never_reports_its_end_is_timed_out_and_written_back(
    lab: Lab, service_factory: Start, title_carries_id: bool
) -> None:
    """No callback, and nothing to poll (no recipe_id, or no job carries our id): the
    run is not left running; past its deadline it is written back as timed out."""
    lab.workato.faults.drop_callbacks = True
    lab.workato.titles_carry_correlation = title_carries_id
    rule = lab.rule("workato")
    if title_carries_id:  # then only a rule without a recipe_id cannot poll
        target = {"endpoint_url": rule["start"]["target"]["endpoint_url"]}
        rule["start"] = {**rule["start"], "target": target}
    await service_factory([rule], clients={"workato": {"run_deadline_s": 1.0}})
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Ticketing")

    assert await lab.change(fact_sheet) == 202
    await eventually(
        lambda: written_back(lab, fact_sheet, "workato-failed"), what="written back, timed out"
    )
    assert "workato-done" not in tags(lab, fact_sheet)
    [note] = comments(lab, fact_sheet)
    assert "timed_out (accepted)" in note  # the last word Workato said
    assert [c["outcome"] for c in lab.workato.callbacks] == ["dropped"]
    assert len(received_inputs(lab, "workato")) == 1


@pytest.mark.parametrize("vendor", VENDORS)
async def test_the_worker_restarted_between_start_and_completion(
    lab: Lab, service_factory: Start, vendor: str
) -> None:
    service = await service_factory([lab.rule(vendor)])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "CRM")
    getattr(lab, vendor).run_duration_s = 1.5  # long enough to restart in between

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: received_inputs(lab, vendor), what="the run started")
    await service.halt()  # callbacks arriving now get connection errors, or wait in RabbitMQ
    await service.start()
    await eventually(lambda: written_back(lab, fact_sheet, f"{vendor}-done"), timeout_s=20,
                     what="written back after the restart")  # fmt: skip
    assert len(received_inputs(lab, vendor)) == 1
    assert len(comments(lab, fact_sheet)) == 1


@pytest.mark.parametrize("status", [503, 429])
@pytest.mark.parametrize("vendor", VENDORS)
async def test_vendor_errors_on_start_are_retried_once_it_recovers(
    lab: Lab, service_factory: Start, vendor: str, status: int
) -> None:
    simulator = getattr(lab, vendor)
    simulator.faults.retry_after_s = 0
    simulator.faults.fail(status, times=2)
    await service_factory([lab.rule(vendor)])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "ERP")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, f"{vendor}-done"), what="written back")
    assert len(received_inputs(lab, vendor)) == 1


async def test_a_workato_server_fault_is_retried_not_dropped(
    lab: Lab, service_factory: Start
) -> None:
    lab.workato.faults.fail(500, times=2)  # a body that does not blame the parameters
    await service_factory([lab.rule("workato")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Invoicing")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "workato-done"), what="written back")
    assert len(received_inputs(lab, "workato")) == 1
    assert lab.workato.faults.requests >= 3  # two faults, then the call that started it


async def test_a_vendor_timeout_is_retried(lab: Lab, service_factory: Start) -> None:
    lab.uipath.faults.hang(1)
    await service_factory([lab.rule("uipath")], clients={"uipath": {"timeout_s": 0.5}})
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Payroll")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "uipath-done"), what="written back")


async def test_a_start_whose_answer_was_lost_is_found_not_repeated(
    lab: Lab, service_factory: Start
) -> None:
    lab.uipath.faults.lose_answer("StartJobs")  # Orchestrator creates the job; we get a 502
    await service_factory([lab.rule("uipath")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Ledger")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "uipath-done"), what="written back")
    assert len(lab.uipath.starts) == 1  # the retry found the job by its Reference
    assert len(comments(lab, fact_sheet)) == 1


async def test_leanix_unavailable_during_write_back_is_retried(
    lab: Lab, service_factory: Start
) -> None:
    await service_factory([lab.rule("robocorp")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Intranet")
    lab.leanix.faults.retry_after_s = 0
    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: received_inputs(lab, "robocorp"), what="the run started")
    lab.leanix.faults.fail(503, times=3)
    await eventually(lambda: written_back(lab, fact_sheet, "robocorp-done"), what="written back")
    assert len(comments(lab, fact_sheet)) == 1


async def test_a_synchronous_outcome_whose_write_back_failed_is_written_back_on_retry(
    lab: Lab, service_factory: Start
) -> None:
    rule = lab.rule("workato")
    rule["start"] = {**rule["start"], "target": {"endpoint_url": lab.workato.add_endpoint(
        "onboard-now", mode="sync")}}  # fmt: skip
    await service_factory([rule])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Expenses")
    lab.leanix.faults.retry_after_s = 0
    lab.leanix.faults.fail(503, times=3)  # the write-back right after the answer fails

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "workato-done"), what="written back")
    assert len(received_inputs(lab, "workato")) == 1
    assert len(comments(lab, fact_sheet)) == 1


async def test_a_synchronous_outcome_is_written_back_even_after_a_newer_event(
    lab: Lab, service_factory: Start
) -> None:
    """The retry of event A finishes A's write-back although a newer event B of the same
    type was handled meanwhile (the ordering guard would skip A's retry)."""
    rule = lab.rule("workato")
    rule["start"] = {**rule["start"], "target": {"endpoint_url": lab.workato.add_endpoint(
        "onboard-now", mode="sync")}}  # fmt: skip
    await service_factory([rule], worker={"retry_delays_s": [0.5, 1.0, 2.0, 4.0]})
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Procurement")
    # The worker holds its LeanIX token (it tells our own events by it) before LeanIX goes down.
    await eventually(lambda: lab.leanix.requests["token"] >= 1, what="the worker's LeanIX token")
    lab.leanix.faults.fail(503, times=10**6)  # LeanIX down for every write-back...

    assert await lab.change(fact_sheet) == 202  # A
    await eventually(lambda: len(received_inputs(lab, "workato")) == 1, what="A's run")
    assert await lab.change(fact_sheet) == 202  # B, newer
    await eventually(lambda: len(received_inputs(lab, "workato")) == 2, what="B's run")
    lab.leanix.faults.reset()  # ...until both runs had answered

    await eventually(lambda: len(comments(lab, fact_sheet)) == 2, what="both written back")


async def test_several_workers_poll_and_write_back_a_run_once(
    lab: Lab, service_factory: Start, make_service: Callable[..., Service]
) -> None:
    lab.leapwork.faults.drop_callbacks = True  # completion by polling only
    rules = [lab.rule("leapwork")]
    await service_factory(rules)
    workers = [make_service(rules, http={"port": 0}) for _ in range(2)]
    for worker in workers:
        await worker.start("worker")
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Treasury")

    try:
        assert await lab.change(fact_sheet) == 202
        await eventually(lambda: written_back(lab, fact_sheet, "leapwork-done"), what="written")
        await eventually(lambda: drained(workers[0].settings), what="every copy handled")
    finally:
        for worker in workers:
            await worker.halt()
    assert len(comments(lab, fact_sheet)) == 1
    assert len(received_inputs(lab, "leapwork")) == 1


async def test_our_own_write_back_does_not_start_another_run(
    lab: Lab, service_factory: Start
) -> None:
    lab.leanix.subscribe(
        f"{lab.service_url}/webhooks/leanix", "Bearer lab-leanix-webhook-credential"
    )
    service = await service_factory([lab.rule("uipath")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Webshop")

    assert await lab.change(fact_sheet) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "uipath-done"), what="written back")
    # Our write-back made LeanIX send FactSheetUpdatedEvents by our technical user...
    await eventually(lambda: len(lab.leanix.deliveries) >= 2, what="LeanIX notified us")
    await lab.leanix.drain()
    assert all(d.get("status") == 202 for d in lab.leanix.deliveries)
    await eventually(lambda: drained(service.settings), what="those events handled")
    # ...which were accepted, and ignored: still one run.
    assert len(received_inputs(lab, "uipath")) == 1


async def test_an_out_of_order_event_is_dropped(lab: Lab, service_factory: Start) -> None:
    service = await service_factory([lab.rule("leapwork")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Mail")
    old = lab.leanix.event(fact_sheet, user_id="9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00")
    assert await lab.change(fact_sheet) == 202  # newer sequence number
    await eventually(lambda: written_back(lab, fact_sheet, "leapwork-done"), what="written back")
    late = await lab.leanix._post(  # the older event, delivered late
        f"{lab.service_url}/webhooks/leanix", "Bearer lab-leanix-webhook-credential", old
    )
    assert late == 202
    await eventually(lambda: drained(service.settings), what="the late event handled")
    assert len(received_inputs(lab, "leapwork")) == 1


async def test_our_own_event_is_recognised_before_we_ever_wrote_back(
    lab: Lab, service_factory: Start
) -> None:
    """A worker that just started knows our technical user only from a LeanIX token: it
    fetches one first, waiting while LeanIX is down, rather than act on our own change."""
    lab.leanix.faults.retry_after_s = 0
    lab.leanix.faults.fail(503, times=3)  # down as the worker starts
    service = await service_factory([lab.rule("robocorp")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Archive")
    ours = lab.leanix.event(fact_sheet, user_id=DEFAULT_USER_ID)  # our write-back's echo

    url = f"{lab.service_url}/webhooks/leanix"
    assert await lab.leanix._post(url, "Bearer lab-leanix-webhook-credential", ours) == 202

    async def handled() -> bool:
        return await logged_statuses(service.settings, fact_sheet) == ["handled"]

    await eventually(handled, what="the event handled, after LeanIX came back")
    assert received_inputs(lab, "robocorp") == []
    assert lab.leanix.issued  # it did fetch a token, once LeanIX answered


async def test_a_created_event_delivered_after_a_newer_update_still_starts_its_run(
    lab: Lab, service_factory: Start
) -> None:
    created_rule = lab.rule("uipath", name="provision", on=["leanix.factsheet.created"])
    updated_rule = lab.rule("leapwork", name="regression", on=["leanix.factsheet.updated"])
    await service_factory([created_rule, updated_rule])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Fleet")
    created = lab.leanix.event(fact_sheet, "FactSheetCreatedEvent", user_id=SOMEONE)
    updated = lab.leanix.event(fact_sheet, "FactSheetUpdatedEvent", user_id=SOMEONE)
    url = f"{lab.service_url}/webhooks/leanix"

    for event in (updated, created):  # LeanIX does not deliver in order
        assert await lab.leanix._post(url, "Bearer lab-leanix-webhook-credential", event) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "uipath-done"), what="provisioned")
    await eventually(lambda: "leapwork-done" in tags(lab, fact_sheet), what="regression run")
    assert len(received_inputs(lab, "uipath")) == 1
    assert len(received_inputs(lab, "leapwork")) == 1


async def test_a_redelivered_leanix_event_starts_one_run(lab: Lab, service_factory: Start) -> None:
    await service_factory([lab.rule("robocorp")])
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Docs")
    event: dict[str, Any] = lab.leanix.event(
        fact_sheet, user_id="9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"
    )
    url = f"{lab.service_url}/webhooks/leanix"
    for _ in range(3):  # LeanIX re-sends: at-least-once delivery
        assert await lab.leanix._post(url, "Bearer lab-leanix-webhook-credential", event) == 202
    await eventually(lambda: written_back(lab, fact_sheet, "robocorp-done"), what="written back")
    assert len(received_inputs(lab, "robocorp")) == 1
    assert len(comments(lab, fact_sheet)) == 1
