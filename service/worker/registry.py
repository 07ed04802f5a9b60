"""Registry: which handlers want which events, and the lifespans that open what they
share. Plain decorators, no framework magic.

    from service import Services, handler, lifespan

    @lifespan
    async def pool(services: Services) -> AsyncIterator[None]:
        ...open something, put it in services.state, yield, close it...

    @handler("leanix.factsheet.*")
    async def on_fact_sheet(event: CloudEvent, context: Context) -> None:
        ...

Patterns are AMQP topic patterns over the event type: `*` is one word, `#` is zero or
more words. Name your module in `worker.handler_modules` and the worker imports it. A
module may keep its own `Registry()` and hand it to the worker with `include(mine)`.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import structlog

from service.bus.topics import topic_matches
from service.cloudevent import CloudEvent
from service.errors import ConfigError
from service.worker.context import Context, Services

__all__ = [
    "Context",
    "HandlerFunc",
    "Lifespan",
    "Registration",
    "Registry",
    "handler",
    "idempotency_key",
    "import_modules",
    "include",
    "lifespan",
    "open_lifespans",
    "registry",
]

_KEYS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:leanix-bridge:handler-effect")


def idempotency_key(event_id: str, handler: str) -> str:
    """The key of one handler's effect on one event: a UUID, the same on every delivery,
    retry and replay of the event, on every worker."""
    return str(uuid.uuid5(_KEYS, f"{len(event_id)}:{event_id}/{handler}"))


HandlerFunc = Callable[[CloudEvent, Context], Awaitable[None]]
# An async generator function: opens what its handlers share (into services.state), yields
# once while the worker consumes, closes it after the last handler finished.
Lifespan = Callable[[Services], AsyncIterator[None]]


@dataclass(frozen=True)
class Registration:
    pattern: str
    func: HandlerFunc
    name: str
    retry_delays_s: tuple[float, ...] | None = None  # None: worker.retry_delays_s
    idempotent: bool = False  # claimed per event id, skipped once done (see Registry.handler)


@dataclass
class Registry:
    registrations: list[Registration] = field(default_factory=list)
    lifespans: list[Lifespan] = field(default_factory=list)
    included: list[Registry] = field(default_factory=list, repr=False)

    def handler(
        self,
        pattern: str,
        *,
        name: str | None = None,
        retry_delays_s: Iterable[float] | None = None,
        idempotent: bool = False,
    ) -> Callable[[HandlerFunc], HandlerFunc]:
        """Register an async `func(event, context)` for event types matching `pattern`.

        `idempotent=True`: the handler's work on an event id is claimed in the store
        (shared by every worker) and marked done when it returns. Never two runs at once;
        once marked done, a redelivery, retry or replay skips it. A run interrupted between
        its effect and the mark (a crash, a kill) runs again: make external effects
        idempotent with `context.idempotency_key`; store writes made in
        `context.transaction()` commit with the mark and happen once.
        """

        def register(func: HandlerFunc) -> HandlerFunc:
            self.add(pattern, func, name=name, retry_delays_s=retry_delays_s, idempotent=idempotent)
            return func

        return register

    def add(
        self,
        pattern: str,
        func: HandlerFunc,
        *,
        name: str | None = None,
        retry_delays_s: Iterable[float] | None = None,
        idempotent: bool = False,
    ) -> None:
        """Register `func` (the decorator's plain-call form)."""
        if not pattern or any(not word for word in pattern.split(".")):
            raise ValueError(f"invalid handler pattern {pattern!r}")
        label = name or f"{func.__module__}.{func.__qualname__}"
        if any(r.name == label for r in self.registrations):
            raise ValueError(f"a handler named {label!r} is already registered")
        delays = tuple(float(d) for d in retry_delays_s) if retry_delays_s is not None else None
        self.registrations.append(Registration(pattern, func, label, delays, idempotent))

    def lifespan(self, func: Lifespan) -> Lifespan:
        """Register an async generator `func(services)` that runs at worker start-up up to
        its `yield` (open a session, a pool; put it in `services.state`) and after the
        worker drained, past its `yield` (close it). Lifespans open in registration order
        and close in reverse; one that raises stops start-up, and the error is thrown into
        those opened before it at their `yield` (close in `async with` or `finally`)."""
        self.lifespans.append(func)
        return func

    def include(self, other: Registry) -> None:
        """Add `other`'s handlers and lifespans (once, however often it is included)."""
        if other is self or any(r is other for r in self.included):
            return
        for registration in other.registrations:
            if any(r.name == registration.name for r in self.registrations):
                raise ValueError(f"a handler named {registration.name!r} is already registered")
        self.registrations.extend(other.registrations)
        self.lifespans.extend(other.lifespans)
        self.included.append(other)

    def retry_delays(self) -> set[float]:
        """Every per-handler retry delay, so the worker can declare their queues."""
        return {d for r in self.registrations for d in (r.retry_delays_s or ())}

    def match(self, event_type: str) -> list[Registration]:
        """The handlers for one event type, in registration order."""
        return [r for r in self.registrations if topic_matches(r.pattern, event_type)]


registry = Registry()
handler = registry.handler
lifespan = registry.lifespan
include = registry.include


async def open_lifespans(registry: Registry, services: Services, stack: AsyncExitStack) -> None:
    """Run the lifespans up to their `yield`, their ends registered on `stack`; then the
    state is read-only."""
    for func in registry.lifespans:
        await stack.enter_async_context(asynccontextmanager(func)(services))
    services.state.freeze()


def import_modules(names: Iterable[str]) -> None:
    """Import the user's handler modules, so their decorators run."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ConfigError("worker.handler_modules", f"cannot import {name!r}: {exc}") from exc
        structlog.get_logger("service.worker").info("handlers.imported", module=name)
