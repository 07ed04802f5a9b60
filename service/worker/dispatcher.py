"""Dispatcher: run the handlers an event asks for, each under its claim and timeout, and
say how each fared. The consumer and the in-memory runner (service/testing.py) share it,
so a test decides exactly as the worker does.

    for each matching handler (only those a retry copy names), in registration order:
      idempotent and done before        -> skipped
      idempotent and claimed elsewhere  -> busy: later, without using an attempt
      the store cannot be reached       -> RetryLater
      it ran                            -> its failure (policy.failure) or none

It must never settle a message: what happens to the event is policy.decide's, and the
consumer's to carry out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Collection
from dataclasses import dataclass

import structlog

from service import metrics
from service.cloudevent import CloudEvent
from service.errors import RetryLater
from service.settings import WorkerSettings
from service.worker import policy
from service.worker.claims import ClaimBusy, Claims, Held
from service.worker.context import Context, Services
from service.worker.journal import Ran
from service.worker.policy import Failure
from service.worker.registry import Registration, Registry, idempotency_key

log = structlog.get_logger("service.worker")


@dataclass(frozen=True)
class Settled:
    """One delivery of an event, done: how its handlers fared and what was decided."""

    event: CloudEvent
    attempt: int
    ran: tuple[Ran, ...]
    decision: policy.Decision


class Dispatcher:
    """Runs handlers for the worker; the idempotent ones under `claims` (in the store)."""

    def __init__(
        self,
        worker: WorkerSettings,
        registry: Registry,
        services: Services,
        claims: Claims,
    ) -> None:
        self.worker = worker
        self.registry = registry
        self.services = services
        self.claims = claims

    def handlers(self, event_type: str, only: Collection[str] | None = None) -> list[Registration]:
        """The handlers for `event_type`; of them, those named in `only` if given."""
        matched = self.registry.match(event_type)
        return matched if only is None else [r for r in matched if r.name in only]

    async def dispatch(
        self, event: CloudEvent, handlers: list[Registration], redelivered: bool, attempt: int
    ) -> list[Ran]:
        """Run `handlers` on `event` one after the other: how each fared."""
        ran = []
        for registration in handlers:
            bound = log.bind(handler=registration.name)
            context = Context(bound, redelivered, attempt, services=self.services)
            started = time.perf_counter()
            failed, skipped = await self._run_one(event, registration, context)
            elapsed = (time.perf_counter() - started) * 1000
            if failed is not None:
                log.warning("handler.failed", handler=registration.name, error=failed.error)
            ran.append(Ran(registration.name, failed, elapsed, skipped))
        return ran

    async def _run_one(
        self, event: CloudEvent, registration: Registration, context: Context
    ) -> tuple[Failure | None, bool]:
        """Run one handler, under a claim if idempotent: (its failure or None, skipped)."""
        delays = registration.retry_delays_s or self.worker.retry_delays_s
        try:
            held = await self._claim(event, registration)
        except ClaimBusy:  # its holder is alive and renewing: look again after a while
            return policy.busy(registration.name, 0.0, delays), False
        except Exception as exc:  # the store is down: later
            return policy.failure(registration.name, RetryLater(str(exc)), delays), False
        if held is _DONE:
            log.info("handler.already_done", handler=registration.name)
            return None, True
        try:
            await self._run(event, registration, context, held)
        except Exception as exc:
            await self._unclaim(held, registration)
            return policy.failure(registration.name, exc, delays), False
        except BaseException:  # cancelled: the channel closed under the delivery
            if held is not None:
                self.claims.abandon(held)
            raise
        await self._record(held, registration)
        return None, False

    async def _claim(self, event: CloudEvent, registration: Registration) -> Held | None:
        """Claim an idempotent handler's work (None: not idempotent, it runs unclaimed);
        _DONE if it was done before. Waits up to a lease for a claim whose worker died."""
        if not registration.idempotent:
            return None
        held = await self.claims.acquire(event.id, registration.name)
        return _DONE if held is None else held

    async def _run(
        self, event: CloudEvent, registration: Registration, context: Context, held: Held | None
    ) -> None:
        """The handler, within its timeout (cut short if its claim lapses)."""
        key = idempotency_key(event.id, registration.name)
        timeout = self.worker.handler_timeout_s
        if held is None:
            async with asyncio.timeout(timeout):
                await registration.func(event, dataclasses.replace(context, idempotency_key=key))
            return
        claims = self.claims
        context = dataclasses.replace(
            context, idempotency_key=key, _transaction=lambda: claims.transaction(held)
        )
        async with claims.running(held, timeout):
            await registration.func(event, context)

    async def _unclaim(self, held: Held | None, registration: Registration) -> None:
        if held is not None:
            try:
                await self.claims.release(held)
            except Exception as exc:  # the claim then lapses after its lease
                log.error("handler.release_failed", handler=registration.name, error=repr(exc))

    async def _record(self, held: Held | None, registration: Registration) -> None:
        metrics.handled.labels(registration.name, "ok").inc()
        if held is None:
            return
        try:
            marked = await self.claims.mark(held)
        except Exception as exc:  # the work is done: failing it now would repeat it
            log.error("handler.record_failed", handler=registration.name, error=repr(exc))
            return
        if not marked:  # its lease lapsed unnoticed (a stalled loop): it may have run twice
            log.error("handler.claim_taken_over", handler=registration.name)


_DONE = Held("", "", "done before", 0.0)  # what _claim returns for work already done
