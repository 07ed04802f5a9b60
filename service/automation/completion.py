"""Completion: a run's end, from a vendor callback or the poller, handled exactly once.

Each completion event is turned into its run keys and RunState, by its platform's adapter
(service/vendors/) or, for the poller's own event, here. The run is looked up by the
vendor's run id or our correlation id; whichever event wins `complete()` writes back,
every later one (the callback after the poller, a LeanIX retry...) sees it done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.automation.capacity import after_run
from service.automation.reporting import report
from service.automation.rules import Rule
from service.automation.writeback import write_back
from service.cloudevent import CloudEvent
from service.resources import Resources
from service.runs import RunState
from service.store.runs import Run
from service.vendors import registry
from service.vendors.adapter import Completion

POLLED = "bridge.run.completed"
PATTERNS = (*(p for platform in registry.PLATFORMS for p in platform.receiving.completions), POLLED)


def _polled(event: CloudEvent) -> Completion:
    data = event.data if isinstance(event.data, Mapping) else {}
    state = RunState(
        vendor=str(data.get("vendor")), run_id=str(data.get("runId")),
        status=data.get("status", "failed"), vendor_state=str(data.get("vendorState") or ""),
        outputs=data.get("outputs") or {}, detail=data.get("detail"), url=data.get("url"),
    )  # fmt: skip
    return Completion((state.run_id,), state)


def parse(event: CloudEvent) -> Completion:
    """The run keys (vendor run id, correlation id) and state a completion event carries:
    the poller's own, or a platform's callback, read by its adapter.

    A Leapwork or Workato callback names its run by the correlation id when it gives one,
    and by nothing else: that id is what the run's callback token vouches for
    (vendors/runtoken.py), so a token cannot complete a run named by another field."""
    if event.type == POLLED:
        return _polled(event)
    return registry.platform(event.type.split(".", 1)[0]).receiving.completion(event)


async def on_completion(event: CloudEvent, resources: Resources, log: Any) -> None:
    """Find the run, win its completion once, write back."""
    keys, state = parse(event)
    run = await _find(resources, state.vendor, keys)
    if run is None:
        log.info("run.unknown", vendor=state.vendor, keys=list(keys))  # not started by us
        return
    if not state.terminal:
        log.info("run.progress", run_id=run.run_id, vendor_state=state.vendor_state)
        return
    await finish(run, state, event.id, resources, log)


async def finish(run: Run, state: RunState, event_id: str, resources: Resources, log: Any) -> None:
    """Complete the run for `event_id` (once) and write its outcome back."""
    completed = await resources.database.runs.complete(run, state, event_id)
    if completed is None:
        log.info("run.already_completed", run_id=run.run_id)
        return
    if run.status != "completed":  # not this event's retry of a failed write-back
        client = resources.leanix_for(completed.workspace)
        report(completed, resources.run_metrics, client)  # posted in the background
    await after_run(completed.rule, resources)  # its slot is free: the next one starts
    await write_back_once(completed, resources, log)


async def write_back_once(run: Run, resources: Resources, log: Any) -> None:
    """Write a completed run's outcome back, then mark it written back."""
    await write_back(run, _rule(resources, run.rule), resources, log)
    await resources.database.runs.written_back(run.id)
    log.info("run.written_back", run_id=run.run_id, outcome=run.outcome,
             fact_sheet_id=run.fact_sheet_id)  # fmt: skip


async def _find(resources: Resources, vendor: str, keys: tuple[str, ...]) -> Run | None:
    for key in keys:
        if key:
            run = await resources.database.runs.find(vendor, key)
            if run is not None:
                return run
    return None


def _rule(resources: Resources, name: str) -> Rule | None:
    return next((r for r in resources.rules if r.name == name), None)
