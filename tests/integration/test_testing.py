"""service.testing: the same test in memory and against RabbitMQ gives the same outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from service import CloudEvent, Context, RejectEvent, RetryLater, Services, StateKey
from service.settings import Settings
from service.testing import TestWorker, cloud_event
from service.worker.registry import Registry
from tests.integration.conftest import Inspector

pytestmark = pytest.mark.integration

CALLS: StateKey[list[str]] = StateKey("test.calls")


def make_registry(log: list[str]) -> Registry:
    """Handlers that succeed, fail twice then succeed, and reject; a lifespan around them."""
    registry = Registry()

    @registry.lifespan
    async def calls(services: Services) -> AsyncIterator[None]:
        log.append("open")
        services.state[CALLS] = []
        yield
        log.append("close")

    @registry.handler("leanix.#", name="ok")
    async def ok(event: CloudEvent, context: Context) -> None:
        context.state[CALLS].append(f"ok:{context.attempt}")

    @registry.handler("leanix.factsheet.*", name="flaky", retry_delays_s=[0.05, 0.1, 0.2])
    async def flaky(event: CloudEvent, context: Context) -> None:
        context.state[CALLS].append(f"flaky:{context.attempt}:{context.redelivered}")
        if context.attempt < 3:
            raise RetryLater("not yet")

    @registry.handler("leanix.relation.*", name="picky")
    async def picky(event: CloudEvent, context: Context) -> None:
        raise RejectEvent("relations are not for us")

    return registry


@pytest.fixture(params=["memory", "rabbitmq"])
def worker(
    request: pytest.FixtureRequest, settings: Settings, inspector: Inspector
) -> Callable[[Registry], TestWorker]:
    real = request.param == "rabbitmq"
    return lambda registry: TestWorker(registry, settings, real=real, timeout_s=20)


async def test_a_retried_handler_runs_again_alone_until_it_succeeds(
    worker: Callable[[Registry], TestWorker],
) -> None:
    log: list[str] = []
    async with worker(make_registry(log)) as running:
        outcome = await running.publish(cloud_event("leanix.factsheet.updated", {"x": 1}))
        calls = list(running.services.state[CALLS])
    assert log == ["open", "close"]
    assert outcome.succeeded and outcome.handlers == ("ok", "flaky")
    assert outcome.attempts == 3
    assert [(r.delay_s, r.attempt) for r in outcome.retries] == [(0.05, 2), (0.1, 3)]
    assert calls == ["ok:1", "flaky:1:False", "flaky:2:True", "flaky:3:True"]


async def test_a_rejected_event_is_dead_lettered_with_its_reason(
    worker: Callable[[Registry], TestWorker],
) -> None:
    async with worker(make_registry([])) as running:
        outcome = await running.publish(cloud_event("leanix.relation.created"))
        unhandled = await running.publish(cloud_event("uipath.job.completed"))
    assert outcome.dead_lettered == ("picky",) and not outcome.succeeded
    assert outcome.error == "RejectEvent: relations are not for us"
    assert outcome.attempts == 1 and outcome.retries == ()
    assert unhandled.unhandled and unhandled.succeeded
