"""Capacity: starts that wait for a free slot of their target, or for their rule's
coalescing window to close, in the store (service/store/waiting.py), never in memory.

A rule with `start.concurrency` or `coalesce` does not start its run from the event's
delivery: the delivery records the start as waiting (a `coalesce` rule keeps one per
Fact Sheet, whose event the later ones replace) and is acked, then starts what the target
has room for, oldest first. Each run that ends (completion.py: callback, poll or
time-out) starts the next ones of its target; and every worker sweeps the store each
`automation.waiting_interval_s` for starts now due (a window that closed, a slot freed
by a run another worker saw end, a worker that died holding starts), so that a worker
killed while runs wait loses none. A start is claimed in the store before it is made,
and the claim counts against the target's limit across every worker.

Starts go strictly in order per target. A start that fails for now (the platform is
down, a Leapwork schedule still busy answers 410) keeps its place at the head: it waits
for the next of the worker's retry delays (the last one again and again) and no later
start of its target is made meanwhile; each failure logs `run.start_deferred` with how
many starts it holds behind it. One the platform refuses for good is dropped with an
error in the log, as the event would be dead-lettered, and the next one goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import structlog

from service.automation.rules import Rule, limit_of
from service.cloudevent import CloudEvent, decode, encode
from service.errors import RejectEvent
from service.resources import Resources
from service.store.ids import store_key
from service.store.waiting import Slots, Waiting

log = structlog.get_logger("service.capacity")
HOLDER = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
_draining: ContextVar[bool] = ContextVar("capacity.draining", default=False)


async def submit(
    rule: Rule, event: CloudEvent, sheet: Mapping[str, Any] | None, resources: Resources, log: Any
) -> None:
    """Record the start as waiting (or coalesce it), then start what fits now."""
    from service.automation.starter import correlation_id

    store = resources.database.waiting
    fact_sheet_id = (sheet or {}).get("id")
    fields: dict[str, Any] = dict(
        correlation_id=correlation_id(event.id, rule.name), rule=rule.name,
        target_key=rule.target_key, event_id=event.id, event=encode(event).decode(),
        fact_sheet_id=fact_sheet_id,
    )  # fmt: skip
    if rule.coalesce_s is not None and fact_sheet_id:
        key = store_key(f"{rule.name}/{fact_sheet_id}")
        await store.coalesce(key=key, window_s=rule.coalesce_s, **fields)
        log.info("run.coalescing", fact_sheet_id=fact_sheet_id, window_s=rule.coalesce_s)
        return  # due when its window closes: the sweeper starts it
    await store.add(due_at=time.time(), **fields)
    log.info("run.waiting", limit=rule.concurrency)
    await drain(rule.target_key, resources)


async def after_run(rule_name: str, resources: Resources) -> None:
    """A run of `rule_name` ended: start the next waiting ones of its target. A failure
    here is left to the sweeper, never fails the completion."""
    rule = next((r for r in resources.rules if r.name == rule_name), None)
    if rule is None or not rule.waits:
        return
    try:
        await drain(rule.target_key, resources)
    except Exception as exc:
        log.warning("capacity.drain_failed", rule=rule_name, error=repr(exc))


async def drain(target_key: str, resources: Resources) -> int:
    """Start the target's due waiting starts while it has free slots; how many. A run
    that ends within a start (a synchronous answer) leaves its successors to this loop."""
    if _draining.get():
        return 0
    names, limit = limit_of(resources.rules, target_key)
    if not names:
        return 0
    token = _draining.set(True)
    try:
        return await _drain(Slots(target_key, names, limit), resources)
    finally:
        _draining.reset(token)


async def _drain(slots: Slots, resources: Resources) -> int:
    settings = resources.settings.automation
    store = resources.database.waiting
    started = 0
    while claimed := await store.claim(
        slots, HOLDER, settings.waiting_claim_s, settings.waiting_claim_s
    ):
        for index, waiting in enumerate(claimed):
            if not await _start(waiting, resources):  # it holds the rest: give them back
                await store.release([w.id for w in claimed[index + 1 :]], HOLDER)
                return started
            started += 1
    return started


async def _start(waiting: Waiting, resources: Resources) -> bool:
    """Make one claimed start; forget it once made (or refused for good), or let it wait
    for its retry, holding its target, if it failed for now (False)."""
    from service.automation.starter import fact_sheet_of, start_run

    store = resources.database.waiting
    bound = log.bind(rule=waiting.rule, event_id=waiting.event_id, waited_s=_waited(waiting))
    rule = next((r for r in resources.rules if r.name == waiting.rule), None)
    if rule is None:  # the rule left the configuration meanwhile: it waits for it
        bound.warning("run.waiting_without_rule")
        await store.release([waiting.id], HOLDER)
        return False
    event = decode(waiting.event.encode())
    try:
        async with asyncio.timeout(resources.settings.worker.handler_timeout_s):
            await start_run(rule, event, fact_sheet_of(event), resources, bound)
    except RejectEvent as exc:
        bound.error("run.start_dropped", error=str(exc)[:500], events=waiting.events)
        await store.done(waiting.id, HOLDER)
    except Exception as exc:  # transient, or unknown: never lose the start
        await _defer(waiting, str(exc) or repr(exc), resources, bound)
        return False
    except asyncio.CancelledError:  # the worker stops, or the handler timed out
        await asyncio.shield(store.release([waiting.id], HOLDER))  # others take it
        raise
    else:
        await store.done(waiting.id, HOLDER)
    return True


async def _defer(waiting: Waiting, error: str, resources: Resources, bound: Any) -> None:
    """Hold the start, first in its target's line, until its next retry."""
    store = resources.database.waiting
    delay = _delay(resources, waiting.attempts)
    await store.later(waiting.id, HOLDER, time.time() + delay, error[:500])
    bound.warning(
        "run.start_deferred", error=error[:500], retry_in_s=delay, attempts=waiting.attempts + 1,
        target=waiting.target_key, holding=await store.behind(waiting),
    )  # fmt: skip


def _delay(resources: Resources, attempts: int) -> float:
    delays = resources.settings.worker.retry_delays_s or (5.0,)
    return float(delays[min(attempts, len(delays) - 1)])


def _waited(waiting: Waiting) -> float:
    return round(time.time() - waiting.first_seen, 3)


class Sweeper:
    """Every worker's loop over the waiting starts now due: safe on several workers, as
    each start is claimed in the store before it is made."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop` is set."""
        if not any(rule.waits for rule in self.resources.rules):
            return
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # a bad round must not end sweeping for good
                log.error("capacity.sweep_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.resources.settings.automation.waiting_interval_s):
                    await stop.wait()

    async def sweep(self) -> int:
        """Start every due waiting start that fits its target; how many started."""
        rules = {rule.name: rule for rule in self.resources.rules}
        due = await self.resources.database.waiting.due_rules(time.time())
        targets = {rules[name].target_key for name in due if name in rules}
        started = 0
        for target_key in sorted(targets):
            started += await drain(target_key, self.resources)
        return started
