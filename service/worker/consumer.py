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
unreachable the message waits, unacked). Which handlers run, and how (idempotent ones under
a claim: claims.py), is dispatcher.py's; what their failures ask for is policy.decide's: the
in-memory runner (service/testing.py) uses both as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelInvalidStateError

from service import metrics
from service.bus.broker import Broker
from service.bus.topology import declare_retry_queues, retry_queue
from service.errors import BrokerUnavailable
from service.settings import Settings
from service.store import Database
from service.store.ids import event_key
from service.worker import policy
from service.worker.claims import Claims
from service.worker.context import Services
from service.worker.delivery import (
    Unreadable,
    read,
    sendable_headers,
    sendable_id,
    sendable_key,
)
from service.worker.dispatcher import Dispatcher, Settled
from service.worker.journal import Entry, Journal
from service.worker.policy import Failure, Retry
from service.worker.registry import Registry

log = structlog.get_logger("service.worker")

REPUBLISH_TIMEOUT_S = 10.0


class Consumer:
    """Consumes the work queue with a bounded prefetch and dispatches to the registry.

    Handlers use `services` (none given: no clients, an empty state); `database`, always
    there, keeps the event log and the idempotent handlers' claims.
    """

    def __init__(
        self,
        settings: Settings,
        broker: Broker,
        registry: Registry,
        *,
        database: Database,
        services: Services | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.registry = registry
        self.journal = Journal(database, settings.eventlog)
        worker = settings.worker
        claims = Claims(database.handled, worker.claim_lease_s, worker.handler_timeout_s)
        self.dispatcher = Dispatcher(worker, registry, services or Services(), claims)
        # Told of each event settled (service/testing.py follows a test's events with it).
        self.observers: list[Callable[[Settled], None]] = []
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
            handlers = self.dispatcher.handlers(event.type, delivery.handlers)
            if not handlers:
                entry = Entry(event, delivery.body_size, attempt)
                await self._settle(message, event.type, [], entry)
                log.info("event.unhandled", subject=event.subject)
                metrics.unhandled.inc()
                self._observe(Settled(event, attempt, (), policy.Decision()))
                return
            ran = await self.dispatcher.dispatch(event, handlers, delivery.redelivered, attempt)
            failures = [r.failure for r in ran if r.failure is not None]
            entry = Entry(event, delivery.body_size, attempt, ran)
            decision = await self._settle(message, event.type, failures, entry)
            self._observe(Settled(event, attempt, tuple(ran), decision))
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

    async def _settle(
        self,
        message: AbstractIncomingMessage,
        routing_key: str,
        failures: list[Failure],
        entry: Entry | None = None,
    ) -> policy.Decision:
        """Copy the event to a retry queue or the dead letters as its failures ask, log
        the delivery (`entry`), then ack it, or reject it if a copy could not be made: the
        broker forgets no event before the event log has it. What was decided."""
        decision, copied = await self._copy(message, routing_key, failures)
        if entry is not None:
            await self.journal.write(entry, decision.fates)
        if copied:
            await message.ack()
        else:
            await message.reject(requeue=False)
        return decision

    async def _copy(
        self, message: AbstractIncomingMessage, routing_key: str, failures: list[Failure]
    ) -> tuple[policy.Decision, bool]:
        """Retry or dead-letter copies as policy.decide says: (what was done, all copies
        made). A copy that failed leaves the message to the broker's dead letters."""
        if not failures:
            return policy.Decision(), True
        attempt = _attempt(message)
        decision = policy.decide(failures, attempt)
        try:
            for retry in decision.retries:  # a copy per delay: its handlers
                await self._retry(message, retry)
            if decision.dead:
                await self._dead_letter(message, routing_key, list(decision.dead), attempt)
        except BrokerUnavailable as exc:  # rejected: the broker dead-letters it
            log.error("event.republish_failed", error=str(exc))
            return policy.Decision(dead=tuple(failures)), False
        return decision, True

    def _observe(self, settled: Settled) -> None:
        for observer in self.observers:
            observer(settled)

    async def _retry(self, message: AbstractIncomingMessage, retry: Retry) -> None:
        failed, delay = retry.failures, retry.delay_s
        headers = {
            **sendable_headers(message),
            policy.ATTEMPT: retry.attempt,
            policy.HANDLERS: [f.handler for f in failed],
            policy.LAST_ERROR: failed[0].error[:1000],
        }
        if retry.waited:
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
        log.info(
            "event.retry_scheduled", attempt=retry.attempt, delay_s=delay, error=failed[0].error
        )
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


def _attempt(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(policy.ATTEMPT, 1)
    return value if isinstance(value, int) and value >= 1 else 1
