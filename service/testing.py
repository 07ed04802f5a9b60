"""Testing: run your handlers on a CloudEvent without deploying the service.

    async with TestWorker(registry) as worker:            # in memory, no RabbitMQ
        outcome = await worker.publish(cloud_event("leanix.factsheet.created", {...}))
    assert outcome.succeeded

The in-memory worker takes the worker's own decisions (service/worker/dispatcher.py and
policy.decide: which handlers run, under which claim and timeout, what is retried after
which delay, what is dead-lettered with which error) and follows the retry copies at once
instead of waiting out their delays. `TestWorker(registry, settings, real=True)` runs the
same test against RabbitMQ (`settings.amqp`) through the real consumer, waiting the
delays (give it short `worker.retry_delays_s`). Either way the handlers' lifespans run,
the store is a fresh SQLite file (claims, `context.transaction()`), and the clients are
those `settings` configure: point them at the simulators (`settings_for`).
`automation=True` adds the built-in automation (`service.automation.handlers`) over the
worker's resources, with the rules of `settings`, as the worker does when rules exist.

It must never be imported by the service itself.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import tempfile
import time
import uuid
from collections.abc import Collection
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from service.automation import handlers as automation
from service.automation.rules import load as load_rules
from service.bus.broker import Broker
from service.cloudevent import CloudEvent, encode
from service.resources import Resources, open_resources
from service.settings import Settings, from_mapping
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.store import Database
from service.worker import policy
from service.worker.claims import Claims
from service.worker.consumer import Consumer
from service.worker.context import Services
from service.worker.dispatcher import Dispatcher, Settled
from service.worker.policy import Retry
from service.worker.registry import Registry, open_lifespans
from service.worker.registry import registry as default_registry

__all__ = ["Outcome", "Settled", "TestWorker", "cloud_event", "settings_for"]

MAX_DELIVERIES = 100  # of one event in memory: a handler busy forever is a bug in the test


def cloud_event(
    type: str,
    data: Any = None,
    *,
    id: str | None = None,
    subject: str | None = None,
    source: str = "urn:test",
) -> CloudEvent:
    """A CloudEvent as the receiver would publish it (a fresh id unless given)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return CloudEvent(id or str(uuid.uuid4()), source, type, now, subject, data)


def settings_for(leanix: LeanixSimulator | None = None, **tree: Any) -> Settings:
    """Settings whose LeanIX client talks to a serving `leanix` simulator; `tree` is laid
    over them as TOML would be (e.g. `worker={"retry_delays_s": [0.1]}`)."""
    clients = dict(tree.pop("clients", {}))
    if leanix is not None:
        clients["leanix"] = {"base_url": leanix.base_url, "api_token": DEFAULT_API_TOKEN}
    return from_mapping({**tree, "clients": clients})


@dataclass(frozen=True)
class Outcome:
    """What the worker did with one published event, over all its deliveries."""

    deliveries: tuple[Settled, ...]

    @property
    def succeeded(self) -> bool:
        """Every handler that ran succeeded in the end: nothing dead-lettered or pending."""
        return not self.dead_lettered and not self.pending

    @property
    def unhandled(self) -> bool:
        """No handler matched the event type (the worker acks and logs it)."""
        return not self.deliveries[0].ran

    @property
    def handlers(self) -> tuple[str, ...]:
        """The handlers of the first delivery, in the order they ran."""
        return tuple(r.handler for r in self.deliveries[0].ran)

    @property
    def attempts(self) -> int:
        return max(d.attempt for d in self.deliveries)

    @property
    def retries(self) -> tuple[Retry, ...]:
        """Every retry copy scheduled, in order."""
        return tuple(r for d in self.deliveries for r in d.decision.retries)

    @property
    def pending(self) -> tuple[Retry, ...]:
        """Retry copies not followed (`follow_retries=False`)."""
        return self.retries[len(self.deliveries) - 1 :]

    @property
    def dead_lettered(self) -> tuple[str, ...]:
        """The handlers the event was dead-lettered for."""
        return tuple(f.handler for d in self.deliveries for f in d.decision.dead)

    @property
    def error(self) -> str | None:
        """The dead letter's `x-bridge-error`, if the event was dead-lettered."""
        dead = [f for d in self.deliveries for f in d.decision.dead]
        return dead[0].error[:1000] if dead else None


class TestWorker:
    """The worker, for a test: in memory, or against RabbitMQ with `real=True`."""

    __test__ = False  # not a test class for pytest

    def __init__(
        self,
        registry: Registry | None = None,
        settings: Settings | None = None,
        *,
        real: bool = False,
        automation: bool = False,
        follow_retries: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        self.registry = registry or default_registry
        self.settings = settings or Settings()
        self.real = real
        self.automation = automation
        self.follow_retries = follow_retries
        self.timeout_s = timeout_s
        self._stack = AsyncExitStack()
        self._dispatcher: Dispatcher | None = None
        self._broker: Broker | None = None
        self._waiting: dict[str, asyncio.Queue[Settled]] = {}
        self._services: Services | None = None
        self._resources: Resources | None = None

    @property
    def services(self) -> Services:
        """What the handlers see: the clients, and the state the lifespans filled."""
        if self._services is None:
            raise RuntimeError("use TestWorker in `async with`")
        return self._services

    @property
    def resources(self) -> Resources:
        """What the worker opened (the store, the clients, the settings), for the test's
        own checks; the handlers never see it."""
        if self._resources is None:
            raise RuntimeError("use TestWorker in `async with`")
        return self._resources

    async def __aenter__(self) -> TestWorker:
        await self._stack.__aenter__()
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(kind, error, traceback)

    async def _open(self) -> None:
        """The store, the clients and the lifespans; the broker and consumer if real."""
        folder = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bridge-test-"))
        database = Database(f"sqlite+aiosqlite:///{Path(folder) / 'store.sqlite3'}")
        self._stack.push_async_callback(database.close)
        await database.open()
        broker = Broker(self.settings.amqp)
        if self.real:
            await self._start_broker(broker)
        rules = load_rules(self.settings.rules) if self.automation else ()
        resources = await open_resources(self.settings, broker, database, self._stack, rules)
        self._resources = resources
        registry = self.registry
        if self.automation:
            registry = automation.alongside(registry, resources)
        services = self._services = resources.services()
        await open_lifespans(registry, services, self._stack)
        if self.real:
            consumer = Consumer(
                self.settings, broker, registry, database=database, services=services
            )
            consumer.observers.append(self._settled)
            await consumer.start()
            self._stack.push_async_callback(consumer.stop, self.settings.http.shutdown_grace_s)
            return
        worker = self.settings.worker
        claims = Claims(database.handled, worker.claim_lease_s, worker.handler_timeout_s)
        self._dispatcher = Dispatcher(worker, registry, services, claims)

    async def _start_broker(self, broker: Broker) -> None:
        await broker.start()
        self._stack.push_async_callback(broker.close)
        await broker.wait_ready(self.timeout_s)
        self._broker = broker

    async def publish(self, event: CloudEvent) -> Outcome:
        """Deliver `event` to the handlers; what the worker did with it, once it is acked
        or dead-lettered (with `follow_retries`, after its retries)."""
        if self._dispatcher is not None:
            return Outcome(await self._in_memory(event))
        return Outcome(await self._on_the_broker(event))

    async def _in_memory(self, event: CloudEvent) -> tuple[Settled, ...]:
        """Deliver and follow the retry copies in the order RabbitMQ would return them."""
        assert self._dispatcher is not None, "use TestWorker in `async with`"
        order = itertools.count()
        due: list[tuple[float, int, int, Collection[str] | None]] = [(0.0, next(order), 1, None)]
        done: list[Settled] = []
        while due and len(done) < MAX_DELIVERIES:
            at, _, attempt, only = heapq.heappop(due)
            settled = await self._deliver(event, attempt, only)
            done.append(settled)
            for retry in settled.decision.retries if self.follow_retries else ():
                names = [f.handler for f in retry.failures]
                heapq.heappush(due, (at + retry.delay_s, next(order), retry.attempt, names))
        if due:
            raise RuntimeError(f"event {event.id} was still retried after {MAX_DELIVERIES} times")
        return tuple(done)

    async def _deliver(
        self, event: CloudEvent, attempt: int, only: Collection[str] | None
    ) -> Settled:
        """One delivery: the worker's dispatch, then policy.decide on its failures."""
        assert self._dispatcher is not None
        handlers = self._dispatcher.handlers(event.type, only)
        redelivered = only is not None  # a retry copy
        ran = await self._dispatcher.dispatch(event, handlers, redelivered, attempt)
        failures = [r.failure for r in ran if r.failure is not None]
        return Settled(event, attempt, tuple(ran), policy.decide(failures, attempt))

    async def _on_the_broker(self, event: CloudEvent) -> tuple[Settled, ...]:
        """Publish to the events exchange; collect the consumer's settlements of it."""
        assert self._broker is not None, "use TestWorker in `async with`"
        seen: asyncio.Queue[Settled] = asyncio.Queue()
        self._waiting[event.id] = seen
        try:
            body = encode(event)
            await self._broker.publish(
                body, routing_key=event.type, message_id=event.id, timeout_s=self.timeout_s
            )
            return await self._collect(seen)
        finally:
            del self._waiting[event.id]

    async def _collect(self, seen: asyncio.Queue[Settled]) -> tuple[Settled, ...]:
        done: list[Settled] = []
        outstanding = 1
        deadline = time.monotonic() + self.timeout_s
        while outstanding:
            async with asyncio.timeout(deadline - time.monotonic()):
                settled = await seen.get()
            done.append(settled)
            outstanding -= 1
            if self.follow_retries:
                outstanding += len(settled.decision.retries)
        return tuple(done)

    def _settled(self, settled: Settled) -> None:
        waiting = self._waiting.get(settled.event.id)
        if waiting is not None:
            waiting.put_nowait(settled)
