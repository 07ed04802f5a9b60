"""The poller's deadline: an open run older than its platform's deadline times out."""

from __future__ import annotations

import time

import pytest

from service.automation.poller import overdue
from service.runs import RunState
from service.store.runs import Run

DEADLINE_S = 600.0


def run(age_s: float) -> Run:
    return Run(
        id=1, correlation_id="c-1", vendor="workato", rule="r", event_id="e-1",
        status="running", started_at=time.time() - age_s, run_id="c-1", vendor_state="accepted",
    )  # fmt: skip


RUNNING = RunState("workato", "c-1", "running", "accepted", detail="awaiting the callback")


def test_an_open_run_past_its_deadline_times_out_saying_why() -> None:
    state = overdue(run(DEADLINE_S + 5), RUNNING, DEADLINE_S)

    assert state is not None and state.terminal
    assert (state.status, state.run_id, state.vendor_state) == ("timed_out", "c-1", "accepted")
    assert state.detail is not None
    assert "deadline 600 s" in state.detail
    assert "awaiting the callback" in state.detail


def test_a_run_whose_platform_could_not_be_asked_times_out_too() -> None:
    state = overdue(run(DEADLINE_S + 5), None, DEADLINE_S)

    assert state is not None and state.status == "timed_out"
    assert state.detail is not None and "could not be asked" in state.detail
    assert state.vendor_state == "accepted"  # the run's last word


def test_a_state_without_a_word_keeps_the_runs_last_one() -> None:
    wordless = RunState("workato", "c-1", "running")

    state = overdue(run(DEADLINE_S + 5), wordless, DEADLINE_S)

    assert state is not None
    assert state.vendor_state == "accepted"
    assert state.detail is not None and state.detail.endswith("last: still running")


@pytest.mark.parametrize(
    ("age_s", "state", "deadline_s"),
    [
        (DEADLINE_S - 5, RUNNING, DEADLINE_S),  # not yet
        (DEADLINE_S + 5, RunState("workato", "c-1", "succeeded"), DEADLINE_S),  # it ended
        (10 * DEADLINE_S, RUNNING, None),  # the platform has no deadline
    ],
)
def test_no_time_out_before_the_deadline_after_the_end_or_without_one(
    age_s: float, state: RunState, deadline_s: float | None
) -> None:
    assert overdue(run(age_s), state, deadline_s) is None
