"""service.testing in memory: the worker's decisions, followed without waiting."""

from __future__ import annotations

import asyncio

from service import CloudEvent, Context, Registry, RetryLater
from service.settings import from_mapping
from service.testing import TestWorker, cloud_event


def flaky_pair(calls: list[str]) -> Registry:
    """`slow` fails once on a long schedule, `quick` twice on a short one."""
    registry = Registry()

    @registry.handler("#", name="slow", retry_delays_s=[60])
    async def slow(event: CloudEvent, context: Context) -> None:
        calls.append(f"slow:{context.attempt}")
        if context.attempt == 1:
            raise RetryLater("later")

    @registry.handler("#", name="quick", retry_delays_s=[1, 2])
    async def quick(event: CloudEvent, context: Context) -> None:
        calls.append(f"quick:{context.attempt}")
        if context.attempt < 3:
            raise ConnectionError("reset")

    return registry


async def test_each_handler_follows_its_own_schedule_in_the_brokers_order() -> None:
    calls: list[str] = []
    async with TestWorker(flaky_pair(calls)) as worker:
        outcome = await worker.publish(cloud_event("x.y.z"))
    assert outcome.succeeded
    # a copy per delay: quick comes back after 1 s and 2 s, slow after 60 s
    assert calls == ["slow:1", "quick:1", "quick:2", "quick:3", "slow:2"]
    assert [(r.delay_s, [f.handler for f in r.failures]) for r in outcome.retries] == [
        (60.0, ["slow"]),
        (1.0, ["quick"]),
        (2.0, ["quick"]),
    ]


async def test_without_following_retries_the_copies_are_pending() -> None:
    calls: list[str] = []
    async with TestWorker(flaky_pair(calls), follow_retries=False) as worker:
        outcome = await worker.publish(cloud_event("x.y.z"))
    assert calls == ["slow:1", "quick:1"]
    assert not outcome.succeeded and not outcome.dead_lettered
    assert [r.delay_s for r in outcome.pending] == [60.0, 1.0]


async def test_a_handler_over_its_timeout_is_retried_then_dead_lettered() -> None:
    registry = Registry()

    @registry.handler("#", name="stuck")
    async def stuck(event: CloudEvent, context: Context) -> None:
        await asyncio.Event().wait()

    settings = from_mapping({"worker": {"handler_timeout_s": 0.05, "retry_delays_s": [1]}})
    async with TestWorker(registry, settings) as worker:
        outcome = await worker.publish(cloud_event("x.y.z"))
    assert outcome.attempts == 2 and outcome.dead_lettered == ("stuck",)
    assert outcome.error == "TimeoutError"


async def test_an_event_no_handler_wants_is_unhandled() -> None:
    async with TestWorker(Registry()) as worker:
        outcome = await worker.publish(cloud_event("x.y.z"))
    assert outcome.unhandled and outcome.succeeded and outcome.handlers == ()
