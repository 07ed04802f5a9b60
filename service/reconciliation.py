"""Reconciliation on a schedule: `reconcile --apply` in the worker, by one replica at a time.

    [reconcile] interval = "15m"   (empty, the default: never)

Every replica ticks each `interval` and tries the lease "reconcile" (store/leases.py) for
two intervals; the holder renews it at each of its ticks, so it keeps reconciling while
alive, and reconciles every workspace (service/reconcile.py, through the worker's clients)
changed since `interval + margin` ago: runs overlap by the margin, so a change made while a
run was under way is not missed, and a change reconciled twice gets the same event id,
which the worker handles once. A holder that dies stops renewing: another replica takes
over within two intervals. On shutdown a run under way is cancelled (what it published was
each confirmed; the next run covers the rest) and the lease given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from service import metrics, workspaces
from service.reconcile import Outcome, listening, reconcile_each
from service.resources import Resources
from service.store.leases import LeaseStore

log = structlog.get_logger("service.reconcile")

LEASE = "reconcile"
LEASES_PER_INTERVAL = 2  # the holder renews each interval: it never lapses while alive

Reconcile = Callable[[datetime], Awaitable[int]]  # since -> events published


class Schedule:
    """Runs `reconcile` every `interval_s` while this replica holds the lease."""

    def __init__(
        self, interval_s: float, margin_s: float, leases: LeaseStore, reconcile: Reconcile
    ) -> None:
        self.interval_s = interval_s
        self.margin_s = margin_s
        self.leases = leases
        self.reconcile = reconcile
        self.holder = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.runs = 0  # reconciliations this replica ran

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop`; then give the lease up so another replica may take it."""
        try:
            while not stop.is_set():
                await _unless_stopped(self.tick(), stop)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await stop.wait()
        finally:  # stopped: hand over at once (cancelled: left to lapse, as if killed)
            if stop.is_set():
                with contextlib.suppress(Exception):
                    await self.leases.release(LEASE, self.holder)

    async def tick(self) -> bool:
        """Reconcile if this replica holds (or takes) the lease; whether it did."""
        lease_s = self.interval_s * LEASES_PER_INTERVAL
        try:
            held = await self.leases.acquire(LEASE, self.holder, lease_s)
        except Exception as exc:  # the store is unreachable: the next tick tries again
            log.warning("reconcile.lease_failed", error=repr(exc)[:300])
            return False
        if not held:
            return False
        since = datetime.now(UTC) - timedelta(seconds=self.interval_s + self.margin_s)
        started = time.perf_counter()
        try:
            published = await self.reconcile(since)
        except Exception as exc:
            metrics.reconcile_runs.labels("failed").inc()
            log.error("reconcile.failed", error=repr(exc)[:500])
            return False
        self.runs += 1
        metrics.reconcile_runs.labels("ok").inc()
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("reconcile.done", published=published, since=since.isoformat(), ms=duration_ms)
        return True


def reconciler(resources: Resources) -> Reconcile | None:
    """Reconcile every workspace the worker has a client of, publishing; None if no rule
    listens to reconciled events (nothing would act on them) or no workspace has a client."""
    rules = listening(resources.rules)
    clients = [
        (ws, resources.leanix_clients[ws.name])
        for ws in workspaces.configured(resources.settings)
        if ws.name in resources.leanix_clients
    ]
    if not rules or not clients:
        return None
    timeout_s = resources.settings.http.publish_timeout_s

    async def reconcile(since: datetime) -> int:
        runs, broker = resources.database.runs, resources.broker
        outcomes = await reconcile_each(clients, runs, broker, rules, since, timeout_s)
        for outcome in outcomes:
            _logged(outcome)
        return sum(len(outcome.published) for outcome in outcomes)

    return reconcile


def schedule(resources: Resources) -> Schedule | None:
    """The schedule `[reconcile] interval` asks for; None when off (or nothing to do)."""
    settings = resources.settings.reconcile
    interval_s = settings.interval_s
    if interval_s is None:
        return None
    reconcile = reconciler(resources)
    if reconcile is None:
        log.warning(
            "reconcile.not_scheduled",
            reason="no rule listens to leanix.factsheet.reconciled, or no LeanIX API token",
        )
        return None
    return Schedule(interval_s, settings.margin_s, resources.database.leases, reconcile)


def _logged(outcome: Outcome) -> None:
    if outcome.failed:
        log.error("reconcile.workspace_failed", workspace=outcome.workspace, error=outcome.failed)
        return
    published = len(outcome.published)
    metrics.reconciled_events.labels(outcome.workspace).inc(published)
    log.info(
        "reconcile.workspace",
        workspace=outcome.workspace,
        published=published,
        skipped=outcome.skipped,
    )


async def _unless_stopped(work: Awaitable[Any], stop: asyncio.Event) -> None:
    """Await `work`, cancelled if `stop` is set first."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (task, stopped):
            waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
