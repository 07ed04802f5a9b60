"""The automation loop's entry points, registered with the worker when rules exist."""

from __future__ import annotations

from service.automation import completion, guards, starter
from service.cloudevent import CloudEvent
from service.errors import RejectEvent
from service.resources import Resources
from service.worker.registry import Context, Registry


def _resources(context: Context) -> Resources:
    if context.resources is None:
        raise RejectEvent("the automation handlers need the worker's resources")
    return context.resources


async def on_leanix_event(event: CloudEvent, context: Context) -> None:
    """A Fact Sheet changed: start the runs its rules ask for."""
    resources = _resources(context)
    sheet = starter.fact_sheet_of(event)
    if not any(rule.matches(event.type, sheet) for rule in resources.rules):
        return
    await starter.finish_interrupted(event, sheet, resources, context.log)
    reason = await guards.skip_reason(event, (sheet or {}).get("id"), resources)
    if reason:
        context.log.info("event.ignored", reason=reason)
        return
    await starter.start_runs(event, sheet, resources, context.log)


async def on_run_completion(event: CloudEvent, context: Context) -> None:
    """A run finished (callback or poller): write its outcome back, once."""
    await completion.on_completion(event, _resources(context), context.log)


def register(registry: Registry) -> None:
    """Add the automation handlers to `registry`.

    Both are idempotent (claimed per event id in the store): two copies of one event (a
    sender's retry, two pollers, a redelivery) are handled one after the other, never at
    once, and a copy of an event already handled is skipped.
    """
    registry.add("leanix.#", on_leanix_event, name="automation.start", idempotent=True)
    for pattern in completion.PATTERNS:
        name = f"automation.complete[{pattern}]"
        registry.add(pattern, on_run_completion, name=name, idempotent=True)
