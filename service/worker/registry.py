"""Registry: which handlers want which events. A plain decorator, no framework magic.

    from service import handler

    @handler("leanix.factsheet.*")
    async def on_fact_sheet(event, context):
        ...

Patterns are AMQP topic patterns over the event type: `*` is one word, `#` is zero or
more words. Name your module in `worker.handler_modules` and the worker imports it.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from service.bus.topics import topic_matches
from service.cloudevent import CloudEvent
from service.errors import ConfigError
from service.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from service.resources import Resources

_KEYS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:leanix-bridge:handler-effect")


def idempotency_key(event_id: str, handler: str) -> str:
    """The key of one handler's effect on one event: a UUID, the same on every delivery,
    retry and replay of the event, on every worker."""
    return str(uuid.uuid5(_KEYS, f"{len(event_id)}:{event_id}/{handler}"))


@dataclass(frozen=True)
class Context:
    """What a handler gets besides the event."""

    settings: Settings
    log: Any  # a structlog logger bound to the event id and type
    redelivered: bool = False  # delivered before: a retry, or after a crash; be idempotent
    attempt: int = 1
    resources: Resources | None = None  # the worker's store, clients and rules
    # Give it to the vendor as its idempotency key (or reference, or look-up id): a run
    # interrupted after its effect and before the done mark runs again with the same key.
    idempotency_key: str = ""
    _transaction: Callable[[], AbstractAsyncContextManager[AsyncConnection]] | None = field(
        default=None, repr=False
    )

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction on the worker's store that marks this handler done on this event
        when it commits: writes made in it happen exactly once. Idempotent handlers only;
        it raises ClaimLost (retried) if another delivery took the claim over meanwhile."""
        if self._transaction is None:
            raise RuntimeError(
                "context.transaction() needs a handler registered with idempotent=True "
                "and a worker with a store"
            )
        return self._transaction()


HandlerFunc = Callable[[CloudEvent, Context], Awaitable[None]]


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

    def retry_delays(self) -> set[float]:
        """Every per-handler retry delay, so the worker can declare their queues."""
        return {d for r in self.registrations for d in (r.retry_delays_s or ())}

    def match(self, event_type: str) -> list[Registration]:
        """The handlers for one event type, in registration order."""
        return [r for r in self.registrations if topic_matches(r.pattern, event_type)]


registry = Registry()
handler = registry.handler


def import_modules(names: Iterable[str]) -> None:
    """Import the user's handler modules, so their decorators run."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ConfigError("worker.handler_modules", f"cannot import {name!r}: {exc}") from exc
        structlog.get_logger("service.worker").info("handlers.imported", module=name)
