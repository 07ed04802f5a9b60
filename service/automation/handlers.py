"""The automation loop as a handler module, built on the public kit (`from service
import ...`, as a user's module would): its handlers and its lifespan (the poller and the
platforms' start-up checks, preflight.py, run while the worker consumes).

What it needs beyond a user's handlers (the store's run tables, the broker, the rules) it
gets as the argument of `build`, which makes its Registry: its handlers and lifespan close
over the worker's resources, so nothing of them goes into the state that every handler
reads (no settings, no secrets, no broker there).

The worker adds it to the handlers' registry when rules exist (`alongside`: runtime.py,
and TestWorker with `automation=True`). Both handlers are idempotent (claimed per event
id in the store): two copies of one event (a sender's retry, two pollers, a redelivery)
are handled one after the other, never at once, and a copy of an event already handled
is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from service import CloudEvent, Context, Registry, Services
from service.automation import completion, guards, preflight, starter
from service.automation.capacity import Sweeper
from service.automation.poller import Poller
from service.resources import Resources


def build(resources: Resources) -> Registry:
    """The automation's handlers and lifespan over `resources` (a new Registry each call)."""
    registry = Registry()

    @registry.handler("leanix.#", name="automation.start", idempotent=True)
    async def on_leanix_event(event: CloudEvent, context: Context) -> None:
        """A Fact Sheet changed: start the runs its rules ask for."""
        sheet = starter.fact_sheet_of(event)
        called = starter.workspace_names(event, resources)
        if not any(rule.matches(event.type, sheet, called) for rule in resources.rules):
            return
        await starter.finish_interrupted(event, sheet, resources, context.log)
        reason = await guards.skip_reason(event, (sheet or {}).get("id"), resources)
        if reason:
            context.log.info("event.ignored", reason=reason)
            return
        await starter.start_runs(event, sheet, resources, context.log)

    async def on_run_completion(event: CloudEvent, context: Context) -> None:
        """A run finished (callback or poller): write its outcome back, once."""
        await completion.on_completion(event, resources, context.log)

    for pattern in completion.PATTERNS:
        registry.add(
            pattern, on_run_completion, name=f"automation.complete[{pattern}]", idempotent=True
        )

    @registry.lifespan
    async def background(services: Services) -> AsyncIterator[None]:
        """Poll the runs whose callback is late, sweep the waiting starts (capacity.py),
        and run the platforms' start-up checks once while the worker consumes; all halted
        and awaited when it stops."""
        async with contextlib.AsyncExitStack() as stack:
            await _in_background(Poller(resources).run, stack)
            await _in_background(Sweeper(resources).run, stack)
            await _in_background(lambda halt: preflight.check_at_start(resources, halt), stack)
            yield

    return registry


def alongside(registry: Registry, resources: Resources) -> Registry:
    """A new Registry: `registry`'s handlers and lifespans, then the automation's over
    `resources`; `registry` (the default one, too) stays as it was."""
    both = Registry()
    both.include(registry)
    both.include(build(resources))
    return both


async def _in_background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stack: contextlib.AsyncExitStack
) -> None:
    """Run `run(halt)` until the stack closes, when `halt` is set and it is awaited."""
    halt = asyncio.Event()
    task = asyncio.create_task(run(halt))

    async def stop() -> None:
        halt.set()
        await task

    stack.push_async_callback(stop)
