"""Puller: one LeanIX PULL subscription's events onto the bus, at least once, in batches.

Each workspace has its puller, with its own client (token, URL). Its subscription is the
configured id (an override) or, by default, the PULL subscription `subscriptions apply`
made under `subscriptions.leanix_identifier`, looked up by the lease holder (again after
LeanIX refused it: it may have been made anew).

Exactly one replica pulls a subscription: the one holding its lease in the store
(service/store/leases.py), renewed every third of `leanix_pull.lease_s`. A holder that
dies stops renewing and another replica takes over within a lease. A holder that cannot
renew stops pulling before its lease can lapse; even two pullers at once only publish an
event twice under one CloudEvent id, which the worker handles once.

The cursor moves only after every event of a batch was confirmed by the broker. A failed
fetch, publish or commit is waited out (`leanix_pull.retry_s`) and the batch fetched again.
An event that cannot be normalised is logged and skipped, as a PUSH of it would be
refused with a 400: it must not hold the cursor back forever.
It must never commit a cursor past an event that was not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import structlog

from service.bus.broker import Broker
from service.clients.leanix_webhooks import Batch, LeanixWebhooks, Pulled
from service.errors import (
    BrokerUnavailable,
    InputError,
    VendorRejected,
    VendorUnavailable,
)
from service.receiver.ingest import build_message, send
from service.receiver.sources import Source
from service.settings import PullSettings
from service.store.leases import LeaseStore
from service.vendors.signatures import Credential

log = structlog.get_logger("service.pull")

CREDENTIAL = Credential("pull")  # the event came over our own authenticated fetch
RENEWALS_PER_LEASE = 3


@dataclass(frozen=True)
class Subscription:
    """Which subscription a puller pulls: its workspace's, by id or else by identifier."""

    workspace: str = "default"
    id: str = ""  # configured: pulled as is
    identifier: str = ""  # else the PULL subscription of this identifier, looked up
    source: str | None = None  # its events' CloudEvent source (leanix:<workspaceId>), if known

    @property
    def lease(self) -> str:
        """One puller per workspace's subscription across every replica."""
        return lease_name(f"{self.workspace}:{self.id or self.identifier}")


def lease_name(subscription: str) -> str:
    return f"leanix-pull:{subscription}"[:200]


class Puller:
    """Pulls one subscription while it holds the subscription's lease."""

    def __init__(
        self,
        settings: PullSettings,
        webhooks: LeanixWebhooks,
        broker: Broker,
        leases: LeaseStore,
        source: Source,
        publish_timeout_s: float,
        subscription: Subscription | None = None,
    ) -> None:
        self.settings = settings
        self.subscription = subscription or Subscription(id=settings.subscription_id)
        self.subscription_id = self.subscription.id  # "" until looked up
        # The event came over our own authenticated fetch, from this workspace only.
        self.credential = Credential(CREDENTIAL.scheme, source=self.subscription.source)
        self.webhooks = webhooks
        self.broker = broker
        self.leases = leases
        self.source = source
        self.publish_timeout_s = publish_timeout_s
        self.holder = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease = self.subscription.lease
        self.holding = asyncio.Event()  # set while this replica holds the lease
        self._lost = asyncio.Event()  # set when the lease could not be renewed
        self.pulled = 0  # events published (and confirmed) so far
        self.before_commit: Callable[[Batch], object] | None = None  # a test's probe

    async def run(self, stop: asyncio.Event) -> None:
        """Pull while holding the lease, until `stop`; then give the lease up, so another
        replica takes over at once (cancelled, it is left to lapse)."""
        try:
            while not stop.is_set():
                if await self._take():
                    await self._pull_while_held(stop)
                else:
                    await _wait(stop, self.settings.lease_s / RENEWALS_PER_LEASE)
        finally:
            # Stopped: hand over at once. Cancelled: left to lapse, as if killed.
            if self.holding.is_set() and stop.is_set():
                self.holding.clear()
                with contextlib.suppress(Exception):
                    await self.leases.release(self.lease, self.holder)
            self.holding.clear()

    async def _take(self) -> bool:
        try:
            taken = await self.leases.acquire(self.lease, self.holder, self.settings.lease_s)
        except Exception as exc:  # the store is unreachable: try again later
            log.warning("pull.lease_failed", error=repr(exc)[:300])
            return False
        if taken:
            self.holding.set()
            log.info("pull.lease_taken", workspace=self.subscription.workspace, lease=self.lease)
        return taken

    async def _pull_while_held(self, stop: asyncio.Event) -> None:
        """Pull batch after batch; stop when the lease is lost or `stop` is set."""
        self._lost.clear()
        async with self._renewing():
            while not stop.is_set() and self.holding.is_set():
                if not await self._step_unless_ended(stop):
                    await _wait(stop, self.settings.retry_s)

    async def _step_unless_ended(self, stop: asyncio.Event) -> bool:
        """One step, cut short if the lease is lost or `stop` is set (the batch is then
        fetched again later); False if it failed."""
        pulling = asyncio.ensure_future(self._step())
        ended = (asyncio.ensure_future(self._lost.wait()), asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait((pulling, *ended), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this task is cancelled: the step must not go on alone
            for waiting in (pulling, *ended):
                waiting.cancel()
        if not pulling.done() or pulling.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                await pulling
            return True
        return self._settled(pulling)

    def _settled(self, pulling: asyncio.Future[int]) -> bool:
        """Whether a step succeeded; a failure is logged, to be retried."""
        error = pulling.exception()
        if error is None:
            return True
        if isinstance(error, VendorUnavailable | BrokerUnavailable | OSError):
            log.warning("pull.retry", error=str(error)[:500], retry_s=self.settings.retry_s)
        elif isinstance(error, VendorRejected):  # 401, 404: a setting to fix; tried again
            self.subscription_id = self.subscription.id  # looked up again: it may be new
            hint = "check the PULL subscription (`subscriptions plan`) and the API token"
            workspace = self.subscription.workspace
            log.error("pull.rejected", workspace=workspace, error=str(error)[:500], hint=hint)
        else:
            log.error("pull.failed", error=repr(error)[:500])
        return False

    async def _step(self) -> int:
        """Fetch one batch, publish it, commit its cursor; the events published."""
        started = time.perf_counter()
        subscription_id = await self._subscription_id()
        batch = await self.webhooks.fetch(subscription_id)
        if not batch.events:
            return 0
        published = await self.publish(batch.events)
        if self.before_commit is not None:
            self.before_commit(batch)
        if batch.next_offset is not None:
            await self.webhooks.commit(subscription_id, batch.next_offset)
        self.pulled += published
        log.info(
            "pull.batch",
            workspace=self.subscription.workspace,
            events=len(batch.events),
            published=published,
            offset=batch.next_offset,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return published

    async def _subscription_id(self) -> str:
        """The configured id, or the one looked up by identifier (once, until refused)."""
        if not self.subscription_id:
            found = await self.webhooks.find(self.subscription.identifier)
            workspace = self.subscription.workspace
            log.info("pull.subscription_found", workspace=workspace, subscription=found)
            self.subscription_id = found
        return self.subscription_id

    async def publish(self, events: Sequence[Pulled]) -> int:
        """Publish every event, `batch_size` at a time, each awaited to its confirm."""
        published = 0
        size = self.settings.batch_size
        for start in range(0, len(events), size):
            sent = await asyncio.gather(*(self._one(e) for e in events[start : start + size]))
            published += sum(sent)
        return published

    async def _one(self, pulled: Pulled) -> bool:
        """Publish one pulled event through the PUSH path; False if it was refused."""
        try:
            event, message = build_message(self.source, self.credential, pulled.body)
        except InputError as exc:  # malformed, or naming another workspace: as a PUSH's 4xx
            log.error("pull.event_refused", offset=pulled.offset, error=str(exc))
            return False
        await send(self.broker, event, message, self.publish_timeout_s)
        return True

    @contextlib.asynccontextmanager
    async def _renewing(self) -> AsyncIterator[None]:
        heartbeat = asyncio.create_task(self._renew_while_held())
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _renew_while_held(self) -> None:
        """Renew each third of a lease; give up (clear `holding`) a third before it lapses."""
        interval = self.settings.lease_s / RENEWALS_PER_LEASE
        valid_until = time.monotonic() + self.settings.lease_s
        while self.holding.is_set():
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(interval):
                    kept = await self.leases.acquire(self.lease, self.holder, self.settings.lease_s)
            except Exception as exc:
                log.warning("pull.renew_failed", error=repr(exc)[:300])
                kept = time.monotonic() + interval < valid_until - interval
            else:
                valid_until = time.monotonic() + self.settings.lease_s if kept else 0.0
            if not kept:
                log.warning("pull.lease_lost", lease=self.lease)
                self.holding.clear()
                self._lost.set()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
