"""Claims: an idempotent handler's hold on (event id, handler) while it runs, in the store.

One worker's claims share a heartbeat: every third of `worker.claim_lease_s` it renews
the leases of the claims it holds, in one statement. A worker that dies stops renewing,
so its claims lapse within one lease, and the delivery RabbitMQ hands to another worker
takes them over: that delivery waits for the lapse in-process (a lease at most) instead
of going through a retry queue.

A worker that cannot renew a claim before its lease runs out (the store is unreachable,
the claim was taken over) cuts the handler short through its timeout: it fails with
`ClaimLost`, a `RetryLater`, and is retried. So two deliveries never run one handler on
one event at once, as long as the workers' clocks agree to well within a fifth of a lease.
It must never mark or release a claim it no longer holds: both name the claim's token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import RetryLater
from service.store.handled import HandledStore
from service.store.outages import describe, unreachable, until_reachable

log = structlog.get_logger("service.worker")

RENEWALS_PER_LEASE = 3
FENCE_MARGIN = 0.2  # a claim is given up this fraction of a lease before it can lapse


class ClaimBusy(Exception):
    """Another delivery holds the claim and keeps renewing it."""


class ClaimLost(RetryLater):
    """This delivery's claim lapsed or was taken over before the handler finished."""


class StoreUnreachable(RetryLater):
    """The handler's store transaction lost the store (down, or its connection closed)."""


@dataclass(eq=False)
class Held:
    """One claim this worker holds while its handler runs."""

    event_id: str
    handler: str
    token: str
    valid_until: float  # wall clock: when the store lets it lapse, as far as we know
    scope: asyncio.Timeout | None = None  # the handler's timeout, moved up to the fence
    deadline: float = 0.0  # loop time: the handler's own timeout
    fenced: bool = field(default=False)  # the scope ends at the fence, not at the deadline
    marked: bool = field(default=False)  # a handler's transaction marked it done and committed


class Claims:
    """The claims of one worker process and their heartbeat."""

    def __init__(self, store: HandledStore, lease_s: float, legacy_lease_s: float) -> None:
        self.store = store
        self.lease_s = lease_s
        self.legacy_lease_s = legacy_lease_s
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._held: dict[str, Held] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._emptied = asyncio.Event()
        self._issued = 0
        self._releasing: set[asyncio.Task[None]] = set()

    @property
    def poll_s(self) -> float:
        """How often a delivery waiting for a claim asks again."""
        return min(1.0, self.lease_s / 5)

    async def acquire(self, event_id: str, handler: str) -> Held | None:
        """Claim the work, waiting up to a lease for a claim whose worker died to lapse.
        None: already done; ClaimBusy: its holder is alive and renewing."""
        waited_until = time.monotonic() + self.lease_s + self.poll_s
        while True:
            self._issued += 1
            token = f"{self.owner}:{self._issued}"[-64:]
            valid_until = time.time() + self.lease_s
            outcome = await self.store.claim(
                event_id, handler, self.lease_s, token=token, legacy_lease_s=self.legacy_lease_s
            )
            if outcome == "claimed":
                return self._hold(Held(event_id, handler, token, valid_until))
            if outcome == "done":
                return None
            if time.monotonic() >= waited_until:
                raise ClaimBusy
            await asyncio.sleep(self.poll_s)

    @contextlib.asynccontextmanager
    async def running(self, held: Held, timeout_s: float) -> AsyncIterator[None]:
        """The handler's timeout, cut short when its claim can no longer be renewed."""
        scope = asyncio.timeout(timeout_s)
        try:
            async with scope:
                held.scope, held.deadline = scope, asyncio.get_running_loop().time() + timeout_s
                self._fence(held)
                yield
        except TimeoutError:
            if not (scope.expired() and held.fenced):  # the handler's own, or its deadline
                raise
            log.error("claims.lost", handler=held.handler, token=held.token)
            raise ClaimLost("the handler's claim could not be renewed before it lapsed") from None
        finally:
            held.scope = None

    @contextlib.asynccontextmanager
    async def transaction(self, held: Held) -> AsyncIterator[AsyncConnection]:
        """A store transaction that marks the claim done when it commits. The store lost
        on the way (an outage, a connection its server closed) is a RetryLater: nothing
        of it committed, and it is not the handler's data that failed."""
        try:
            async with self.store.engine.begin() as connection:
                yield connection
                if not await self.store.mark_in(
                    connection, held.event_id, held.handler, held.token
                ):
                    raise ClaimLost("another delivery took the handler's claim over")
        except sa.exc.SQLAlchemyError as exc:
            if not unreachable(exc):
                raise
            text = describe(exc, self.store.engine.url)  # one line, never the password
            raise StoreUnreachable(f"the store is unreachable: {text}") from exc
        held.marked = True  # committed: `mark` has nothing left to write

    async def mark(self, held: Held) -> bool:
        """Mark the work done, trying again while the store is unreachable (the claim is
        renewed meanwhile); False if the claim was taken over. A claim the handler's own
        transaction marked is done already: no second write."""
        try:
            if held.marked:
                return True
            mark = self.store.mark
            return await until_reachable(
                lambda: mark(held.event_id, held.handler, held.token), "handled.mark"
            )
        finally:
            self._drop(held)

    async def release(self, held: Held) -> None:
        """Give the claim up, so the event's retry can take it at once."""
        self._drop(held)
        await self.store.release(held.event_id, held.handler, held.token)

    def abandon(self, held: Held) -> None:
        """Give up the claim of a delivery that was cancelled (aiormq cancels a channel's
        consumer tasks when the channel closes; the broker delivers the message again).
        Kept, it would be renewed for the life of the process and every redelivery would
        find it busy, for ever. Released in the background (a cancelled task cannot wait);
        if that fails, it lapses after its lease."""
        self._drop(held)
        task = asyncio.get_running_loop().create_task(self._release_quietly(held))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _release_quietly(self, held: Held) -> None:
        try:
            await self.store.release(held.event_id, held.handler, held.token)
        except Exception as exc:
            log.warning("claims.release_failed", handler=held.handler, error=repr(exc)[:500])

    def _hold(self, held: Held) -> Held:
        self._held[held.token] = held
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._renew_while_held())
        return held

    def _drop(self, held: Held) -> None:
        self._held.pop(held.token, None)
        if not self._held:
            self._emptied.set()

    async def _renew_while_held(self) -> None:
        """Renew every held claim each third of a lease; end as soon as none is held."""
        interval = self.lease_s / RENEWALS_PER_LEASE
        while self._held:
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._emptied.wait()
            if self._held:
                await self._renew(interval)

    async def _renew(self, timeout_s: float) -> None:
        held = list(self._held.values())
        valid_until = time.time() + self.lease_s
        try:
            async with asyncio.timeout(timeout_s):
                kept = await self.store.renew([h.token for h in held], self.lease_s)
        except Exception as exc:  # the store is unreachable: the fences stay where they are
            log.warning("claims.renew_failed", held=len(held), error=repr(exc)[:500])
            return
        for claim in held:
            if claim.token in kept:
                claim.valid_until = valid_until
            elif claim.token in self._held:  # lapsed and taken over: stop at once
                claim.valid_until = 0.0
            self._fence(claim)

    def _fence(self, held: Held) -> None:
        """End the handler's timeout a margin before its claim can lapse (or at its own
        deadline, if sooner)."""
        if held.scope is None or held.scope.expired():
            return
        loop_now = asyncio.get_running_loop().time()
        fence = loop_now + held.valid_until - self.lease_s * FENCE_MARGIN - time.time()
        held.fenced = fence < held.deadline
        held.scope.reschedule(min(held.deadline, fence))
