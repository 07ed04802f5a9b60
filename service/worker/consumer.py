"""Consumer: decode -> dispatch -> settle, for each message of the work queue.

Settlement, as a table:

    every matching handler succeeded      -> ack
    no handler matches the event type     -> ack, logged as unhandled
    the message cannot be read            -> dead letter with the reason, then ack (whatever
                                             its headers, properties or body: delivery.py)
    a handler failed, retryably           -> a copy to the retry queue of its next delay
                                             (only the failed handlers run again), then ack;
                                             schedule exhausted -> dead letter
    a handler failed for good             -> dead letter with the reason, the failed
                                             handlers, attempts and the error, then ack
    the re-publish itself failed          -> reject without requeue: the broker dead-letters
                                             it (no hot requeue loop)
    anything else raised while working    -> dead letter with the error, else reject without
                                             requeue: never left unsettled

A message is acked only after its work is done, or after its copy is confirmed, and an
event only after its delivery is in the event log (journal.py: while the store is
unreachable the message waits, unacked). Idempotent handlers run under a claim (claims.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelInvalidStateError

from service import metrics
from service.bus.broker import Broker
from service.bus.topology import declare_retry_queues, retry_queue
from service.cloudevent import CloudEvent
from service.errors import BrokerUnavailable, RetryLater
from service.resources import Resources
from service.settings import Settings
from service.store.ids import event_key
from service.worker import policy
from service.worker.claims import ClaimBusy, Claims, Held
from service.worker.delivery import (
    Delivery,
    Unreadable,
    read,
    sendable_headers,
    sendable_id,
    sendable_key,
)
from service.worker.journal import Entry, Journal, Ran
from service.worker.policy import Failure
from service.worker.registry import Context, Registration, Registry, idempotency_key

log = structlog.get_logger("service.worker")

REPUBLISH_TIMEOUT_S = 10.0


class Consumer:
    """Consumes the work queue with a bounded prefetch and dispatches to the registry."""

    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        registry: Registry,
        resources: Resources | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.registry = registry
        self.resources = resources
        self.journal = Journal(resources.database if resources else None, settings.eventlog)
        worker = settings.worker
        self.claims = (
            Claims(resources.database.handled, worker.claim_lease_s, worker.handler_timeout_s)
            if resources is not None
            else None
        )
        self._tag: str | None = None
        self._queue: AbstractQueue | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Wait for the broker, then consume (the robust channel re-consumes after reconnects)."""
        await self.broker.declared.wait()
        assert self.broker.connection is not None
        channel = await self.broker.connection.channel()
        delays = {*self.settings.worker.retry_delays_s, *self.registry.retry_delays()}
        await declare_retry_queues(channel, self.settings.amqp, delays)
        await channel.set_qos(prefetch_count=self.settings.worker.prefetch)
        queue = await channel.get_queue(self.settings.amqp.queue)
        self._tag = await queue.consume(self.on_message)
        self._queue = queue
        log.info("worker.consuming", queue=self.settings.amqp.queue)

    async def stop(self, grace_s: float) -> None:
        """Stop taking messages and wait up to `grace_s` for handlers in flight."""
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("worker.drain_timeout", in_flight=self._in_flight)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._process(message)
        except Exception as exc:
            await self._abandon(message, exc)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            delivery = read(message)
        except Unreadable as exc:
            failed = Failure("decode", exc.reason, retryable=False)
            await self._settle(message, sendable_key(message.routing_key), [failed])
            return
        event, attempt = delivery.event, delivery.attempt
        shown = event_key(event.id)  # as the store keys it: a 100 KB id is not logged whole
        with structlog.contextvars.bound_contextvars(event_id=shown, event_type=event.type):
            handlers = self._handlers(delivery)
            if not handlers:
                entry = Entry(event, delivery.body_size, attempt)
                await self._settle(message, event.type, [], entry)
                log.info("event.unhandled", subject=event.subject)
                metrics.unhandled.inc()
                return
            ran = await self._dispatch(delivery, handlers)
            failures = [r.failure for r in ran if r.failure is not None]
            entry = Entry(event, delivery.body_size, attempt, ran)
            await self._settle(message, event.type, failures, entry)
            duration = round((time.perf_counter() - started) * 1000, 2)
            outcome = "failed" if failures else "handled"
            log.info(
                f"event.{outcome}", handlers=len(handlers), attempt=attempt, duration_ms=duration
            )

    async def _abandon(self, message: AbstractIncomingMessage, exc: Exception) -> None:
        """Settle a message whose handling raised (a bug): dead-letter it with the error,
        else reject it so the broker dead-letters it. Never leave it unsettled."""
        if isinstance(exc, ChannelInvalidStateError):  # the channel is gone: it comes again
            log.warning("event.unsettled_channel_closed", error=str(exc))
            return
        log.error("event.processing_failed", error=repr(exc)[:1000])
        text = f"the worker failed on this message: {policy.describe(exc)}"
        failed = Failure("worker", text[:1000], retryable=False)
        try:
            await self._settle(message, sendable_key(message.routing_key), [failed])
        except Exception as again:
            log.error("event.dead_letter_failed", error=repr(again)[:1000])
            with contextlib.suppress(Exception):
                await message.reject(requeue=False)

    def _handlers(self, delivery: Delivery) -> list[Registration]:
        matched = self.registry.match(delivery.event.type)
        if delivery.handlers is None:
            return matched
        return [r for r in matched if r.name in delivery.handlers]

    async def _dispatch(self, delivery: Delivery, handlers: list[Registration]) -> list[Ran]:
        ran = []
        redelivered, attempt = delivery.redelivered, delivery.attempt
        for registration in handlers:
            bound = log.bind(handler=registration.name)
            context = Context(self.settings, bound, redelivered, attempt, self.resources)
            started = time.perf_counter()
            failed, skipped = await self._run_one(delivery.event, registration, context)
            elapsed = (time.perf_counter() - started) * 1000
            if failed is not None:
                log.warning("handler.failed", handler=registration.name, error=failed.error)
            ran.append(Ran(registration.name, failed, elapsed, skipped))
        return ran

    async def _run_one(
        self, event: CloudEvent, registration: Registration, context: Context
    ) -> tuple[Failure | None, bool]:
        """Run one handler, under a claim if idempotent: (its failure or None, skipped)."""
        delays = registration.retry_delays_s or self.settings.worker.retry_delays_s
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
        await self._record(held, registration)
        return None, False

    async def _claim(self, event: CloudEvent, registration: Registration) -> Held | None:
        """Claim an idempotent handler's work (None: it runs unclaimed); _DONE if it was
        done before. Waits up to a lease for a claim whose worker died."""
        if not registration.idempotent or self.claims is None:
            return None
        held = await self.claims.acquire(event.id, registration.name)
        return _DONE if held is None else held

    async def _run(
        self, event: CloudEvent, registration: Registration, context: Context, held: Held | None
    ) -> None:
        """The handler, within its timeout (cut short if its claim lapses)."""
        key = idempotency_key(event.id, registration.name)
        timeout = self.settings.worker.handler_timeout_s
        if held is None or self.claims is None:
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
        if held is not None and self.claims is not None:
            try:
                await self.claims.release(held)
            except Exception as exc:  # the claim then lapses after its lease
                log.error("handler.release_failed", handler=registration.name, error=repr(exc))

    async def _record(self, held: Held | None, registration: Registration) -> None:
        metrics.handled.labels(registration.name, "ok").inc()
        if held is None or self.claims is None:
            return
        try:
            marked = await self.claims.mark(held)
        except Exception as exc:  # the work is done: failing it now would repeat it
            log.error("handler.record_failed", handler=registration.name, error=repr(exc))
            return
        if not marked:  # its lease lapsed unnoticed (a stalled loop): it may have run twice
            log.error("handler.claim_taken_over", handler=registration.name)

    async def _settle(
        self,
        message: AbstractIncomingMessage,
        routing_key: str,
        failures: list[Failure],
        entry: Entry | None = None,
    ) -> None:
        """Copy the event to a retry queue or the dead letters as its failures ask, log
        the delivery (`entry`), then ack it, or reject it if a copy could not be made: the
        broker forgets no event before the event log has it."""
        fates, copied = await self._copy(message, routing_key, failures)
        if entry is not None:
            await self.journal.write(entry, fates)
        if copied:
            await message.ack()
        else:
            await message.reject(requeue=False)

    async def _copy(
        self, message: AbstractIncomingMessage, routing_key: str, failures: list[Failure]
    ) -> tuple[dict[str, str], bool]:
        """Retry or dead-letter copies: (the fate of each failed handler, all copies made)."""
        if not failures:
            return {}, True
        attempt = _attempt(message)
        retries, permanent = policy.plan(failures, attempt)
        try:
            for (delay, counts), failed in retries.items():  # a copy per delay: its handlers
                await self._retry(message, failed, attempt if counts else attempt - 1, delay)
            if permanent:
                await self._dead_letter(message, routing_key, permanent, attempt)
        except BrokerUnavailable as exc:  # rejected: the broker dead-letters it
            log.error("event.republish_failed", error=str(exc))
            return {f.handler: "dead_letter" for f in failures}, False
        fates = {f.handler: "retry" for failed in retries.values() for f in failed}
        return fates | {f.handler: "dead_letter" for f in permanent}, True

    async def _retry(
        self, message: AbstractIncomingMessage, failed: list[Failure], attempt: int, delay: float
    ) -> None:
        headers = {
            **sendable_headers(message),
            policy.ATTEMPT: attempt + 1,
            policy.HANDLERS: [f.handler for f in failed],
            policy.LAST_ERROR: failed[0].error[:1000],
        }
        if not all(f.counts for f in failed):
            headers[policy.WAITED] = True  # delivered before, though no attempt was used
        await self.broker.publish(
            message.body,
            exchange="",
            routing_key=retry_queue(self.settings.amqp, delay),
            message_id=sendable_id(message),
            timeout_s=REPUBLISH_TIMEOUT_S,
            headers=headers,
            expiration_s=policy.jittered(delay),
        )
        log.info("event.retry_scheduled", attempt=attempt + 1, delay_s=delay, error=failed[0].error)
        metrics.retries.inc()
        for f in failed:
            metrics.handled.labels(f.handler, "retry").inc()

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        routing_key: str,
        failed: list[Failure],
        attempt: int,
    ) -> None:
        headers: dict[str, Any] = {
            **sendable_headers(message),
            "x-bridge-error": failed[0].error[:1000],
            "x-bridge-failed-handlers": [f.handler for f in failed],
            "x-bridge-attempts": attempt,
            "x-bridge-dead-lettered-at": datetime.now(UTC).isoformat(),
        }
        headers.pop(policy.HANDLERS, None)
        await self.broker.publish(
            message.body,
            exchange=self.settings.amqp.dead_letter_exchange,
            routing_key=routing_key,
            message_id=sendable_id(message),
            timeout_s=REPUBLISH_TIMEOUT_S,
            headers=headers,
        )
        log.warning("event.dead_lettered", reason=failed[0].error, attempts=attempt)
        metrics.dead_letters.inc()
        for f in failed:
            metrics.handled.labels(f.handler, "dead_letter").inc()


_DONE = Held("", "", "done before", 0.0)  # what _claim returns for work already done


def _attempt(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(policy.ATTEMPT, 1)
    return value if isinstance(value, int) and value >= 1 else 1
