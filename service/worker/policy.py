"""Retry policy: what happens to an event after its handlers ran.

    a handler raised RetryLater (VendorUnavailable included), TimeoutError or
    ConnectionError                  -> retryable: tried again after the next delay of its
                                        schedule, with jitter, by RabbitMQ itself (a TTL
                                        queue); after the last delay -> dead letter
    a handler raised anything else   -> permanent: dead letter now (RejectEvent says so)

Only the handlers that failed run again; those that succeeded are not repeated. Each
failed handler follows its own schedule: handlers whose next delays differ get a copy
each, and a handler whose schedule is exhausted is dead-lettered while the others go on.
Attempts are counted in our own header, never in `x-death`. A handler that did not run
because another delivery holds its claim (`busy`: the worker waited a lease for it in
vain, so its holder is alive) has not used an attempt: it is tried again after the
shortest delay of its schedule, with the same attempt number.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass

from service.errors import RetryLater, VendorUnavailable

ATTEMPT = "x-bridge-attempt"
HANDLERS = "x-bridge-handlers"
LAST_ERROR = "x-bridge-last-error"
WAITED = "x-bridge-waited"  # a copy that waited for a claim: delivered before
# Dead letters no handler failed: the message could not be read (service/worker/delivery.py),
# or the worker itself failed on it. Their error starts with one of these.
NO_HANDLER_ERRORS = ("not a CloudEvent", "unreadable message", "the worker failed on this message")
JITTER = 0.2  # each wait is 80-100% of its delay: never longer than the queue's TTL


@dataclass(frozen=True)
class Failure:
    handler: str
    error: str
    retryable: bool
    retry_after_s: float | None = None
    delays_s: tuple[float, ...] = ()
    counts: bool = True  # False: the handler did not run, the attempt is not used up


def failure(handler: str, exc: BaseException, delays_s: tuple[float, ...]) -> Failure:
    """Classify one handler's exception."""
    retryable = isinstance(exc, RetryLater | TimeoutError | ConnectionError)
    wait = exc.retry_after_s if isinstance(exc, VendorUnavailable) else None
    return Failure(handler, describe(exc), retryable, wait, delays_s)


def describe(exc: BaseException) -> str:
    """`Type: text` of an exception, even one whose text cannot be made."""
    try:
        text = str(exc)
    except Exception:  # a handler's exception may break its own __str__
        text = "(its text cannot be shown)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def busy(handler: str, wait_s: float, delays_s: tuple[float, ...]) -> Failure:
    """A handler another delivery is running (or ran and died in): later, not a failure."""
    text = "another delivery of this event holds the handler's claim"
    return Failure(handler, text, True, wait_s, delays_s, counts=False)


def next_delay(failed: Failure, attempt: int) -> float | None:
    """The delay before attempt `attempt + 1`, or None when the schedule is exhausted."""
    if not failed.counts:
        return _covering(failed.delays_s, failed.retry_after_s or 0.0)
    if attempt > len(failed.delays_s):
        return None
    delay = failed.delays_s[attempt - 1]
    if failed.retry_after_s is not None and failed.retry_after_s > delay:
        # The vendor asked for a longer wait: take the first scheduled delay that covers it.
        delay = _covering(failed.delays_s, failed.retry_after_s)
    return delay


def _covering(delays_s: tuple[float, ...], wait_s: float) -> float:
    """The shortest scheduled delay of at least `wait_s`, else the longest."""
    ordered = sorted(delays_s)
    return ordered[min(bisect.bisect_left(ordered, wait_s), len(ordered) - 1)]


def jittered(delay_s: float) -> float:
    """The per-message wait: a little shorter than the queue's TTL, never longer."""
    return delay_s * (1 - JITTER * random.random())


def plan(
    failures: Sequence[Failure], attempt: int
) -> tuple[dict[tuple[float, bool], list[Failure]], list[Failure]]:
    """What to do after attempt `attempt`: {(delay, counts): the failures to retry after
    it}, and the failures to dead-letter (permanent, or their own schedule exhausted).
    `counts` False: the copy keeps the attempt number (its handlers did not run)."""
    retries: dict[tuple[float, bool], list[Failure]] = {}
    permanent: list[Failure] = []
    for failed in failures:
        delay = next_delay(failed, attempt) if failed.retryable else None
        if delay is None:
            permanent.append(failed)
        else:
            retries.setdefault((delay, failed.counts), []).append(failed)
    return retries, permanent


@dataclass(frozen=True)
class Retry:
    """One copy of the event to a retry queue: its handlers run again after `delay_s`."""

    delay_s: float
    attempt: int  # the attempt the copy will be
    failures: tuple[Failure, ...]

    @property
    def waited(self) -> bool:
        """Some of its handlers did not run (busy): it was delivered before all the same."""
        return not all(f.counts for f in self.failures)


@dataclass(frozen=True)
class Decision:
    """What to do with an event after attempt `attempt`: its retry copies and dead letters."""

    retries: tuple[Retry, ...] = ()
    dead: tuple[Failure, ...] = ()

    @property
    def fates(self) -> dict[str, str]:
        """The fate of each failed handler: "retry" or "dead_letter"."""
        retried = {f.handler: "retry" for r in self.retries for f in r.failures}
        return retried | {f.handler: "dead_letter" for f in self.dead}


def decide(failures: Sequence[Failure], attempt: int) -> Decision:
    """The retry copies and dead letters that `failures` on attempt `attempt` ask for."""
    retries, permanent = plan(failures, attempt)
    copies = tuple(
        Retry(delay, attempt + 1 if counts else attempt, tuple(failed))
        for (delay, counts), failed in retries.items()
    )
    return Decision(copies, tuple(permanent))
