"""Retry policy: classification and the schedule."""

from __future__ import annotations

import pytest

from service.errors import RejectEvent, RetryLater, VendorRejected, VendorUnavailable
from service.worker import policy

DELAYS = (5.0, 30.0, 120.0)


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (RetryLater("later"), True),
        (VendorUnavailable("uipath", "503"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (RejectEvent("never"), False),
        (VendorRejected("leanix", "404"), False),
        (KeyError("bug"), False),
    ],
)
def test_classification(exc: Exception, retryable: bool) -> None:
    assert policy.failure("h", exc, DELAYS).retryable is retryable


def test_error_text_names_the_exception() -> None:
    assert policy.failure("h", VendorUnavailable("uipath", "503"), DELAYS).error == (
        "VendorUnavailable: uipath: 503"
    )
    assert policy.failure("h", TimeoutError(), DELAYS).error == "TimeoutError"


@pytest.mark.parametrize(("attempt", "delay"), [(1, 5.0), (2, 30.0), (3, 120.0), (4, None)])
def test_schedule(attempt: int, delay: float | None) -> None:
    assert policy.next_delay(policy.failure("h", RetryLater("x"), DELAYS), attempt) == delay


@pytest.mark.parametrize(
    ("retry_after", "delay"), [(3, 5.0), (20, 30.0), (31, 120.0), (999, 120.0)]
)
def test_a_longer_retry_after_picks_the_delay_that_covers_it(
    retry_after: float, delay: float
) -> None:
    failed = policy.failure("h", VendorUnavailable("leanix", "429", retry_after), DELAYS)
    assert policy.next_delay(failed, 1) == delay


def test_jitter_never_exceeds_the_delay() -> None:
    waits = [policy.jittered(10.0) for _ in range(1000)]
    assert all(8.0 <= w <= 10.0 for w in waits)
    assert len(set(waits)) > 900


def test_each_failed_handler_follows_its_own_schedule() -> None:
    short = policy.failure("short", RetryLater("x"), (1.0,))
    default = policy.failure("default", RetryLater("x"), DELAYS)
    other = policy.failure("other", RetryLater("x"), (30.0, 60.0))
    broken = policy.failure("broken", KeyError("bug"), DELAYS)

    retries, permanent = policy.plan([short, default, other, broken], attempt=2)

    assert retries == {(30.0, True): [default], (60.0, True): [other]}  # a copy per delay
    assert permanent == [short, broken]  # short's schedule is spent; broken is a bug


def test_nothing_to_retry_when_every_schedule_is_spent() -> None:
    failed = policy.failure("h", RetryLater("x"), DELAYS)
    assert policy.plan([failed], attempt=len(DELAYS) + 1) == ({}, [failed])


def test_a_busy_handler_waits_for_the_lease_without_using_an_attempt() -> None:
    waiting = policy.busy("h", 300.0, (1.0, 2.0))
    spent = policy.busy("h", 1.5, DELAYS)

    retries, permanent = policy.plan([waiting, spent], attempt=9)  # past every schedule

    assert retries == {(2.0, False): [waiting], (5.0, False): [spent]}  # the longest, or covers
    assert permanent == []
