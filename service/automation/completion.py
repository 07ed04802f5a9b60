"""Completion: a run's end, from a vendor callback or the poller, handled exactly once.

Each completion event is turned into (vendor, run key, RunState). The run is looked up
by the vendor's run id or our correlation id; whichever event wins `complete()` writes
back, every later one (the callback after the poller, a LeanIX retry...) sees it done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.automation.rules import Rule
from service.automation.writeback import write_back
from service.clients.uipath import job_run_state
from service.cloudevent import CloudEvent
from service.resources import Resources
from service.runs import RunState, RunStatus
from service.store.runs import Run

POLLED = "bridge.run.completed"
PATTERNS = (
    "uipath.job.*",
    "robocorp.process_run.*",
    "leapwork.run.finished",
    "workato.job.*",
    POLLED,
)
_ROBOCORP = {"completed": "succeeded", "unresolved": "failed", "started": "running"}


def _data(event: CloudEvent) -> Mapping[str, Any]:
    return event.data if isinstance(event.data, Mapping) else {}


def _outputs(data: Mapping[str, Any]) -> Mapping[str, Any]:
    outputs = data.get("outputs")
    return outputs if isinstance(outputs, Mapping) else {}


def _uipath(event: CloudEvent) -> tuple[list[str], RunState]:
    data = _data(event)
    job = data.get("Job")
    jobs = data.get("Jobs")
    if not isinstance(job, Mapping) and isinstance(jobs, list) and jobs:
        job = jobs[0]
    job = job if isinstance(job, Mapping) else {}
    state = job_run_state(job)
    # A webhook's job has no Reference (contracts/uipath.json): it is matched by its Id,
    # which is the run id we keep, or by its Key.
    key = job.get("Key")
    return [state.run_id, *([str(key)] if key else [])], state


def _robocorp(event: CloudEvent) -> tuple[list[str], RunState]:
    word = event.type.rsplit(".", 1)[-1]
    status: RunStatus = _ROBOCORP.get(word, "running")  # type: ignore[assignment]
    run_id = event.subject or ""
    return [run_id], RunState("robocorp", run_id, status, word)


def _leapwork(event: CloudEvent) -> tuple[list[str], RunState]:
    data = _data(event)
    result = str(data.get("result") or "")
    status: RunStatus = "succeeded" if result.lower() in ("pass", "passed") else "failed"
    outputs = _outputs(data)
    state = RunState("leapwork", str(data.get("runId")), status, result or "Finished", outputs)
    correlation_id = str(data.get("correlationId") or "")
    return ([correlation_id] if correlation_id else [state.run_id]), state


def _workato(event: CloudEvent) -> tuple[list[str], RunState]:
    data = _data(event)
    status: RunStatus = "succeeded" if event.type.endswith(".completed") else "failed"
    outputs = _outputs(data)
    error = data.get("error")
    keys = [str(data.get(k)) for k in ("correlationId", "jobId") if data.get(k)]
    state = RunState("workato", keys[-1] if keys else "", status, str(data.get("status")),
                     outputs, None if error is None else str(error))  # fmt: skip
    return keys[:1], state


def _polled(event: CloudEvent) -> tuple[list[str], RunState]:
    data = _data(event)
    state = RunState(
        vendor=str(data.get("vendor")), run_id=str(data.get("runId")),
        status=data.get("status", "failed"), vendor_state=str(data.get("vendorState") or ""),
        outputs=data.get("outputs") or {}, detail=data.get("detail"), url=data.get("url"),
    )  # fmt: skip
    return [state.run_id], state


_PARSERS = {"uipath": _uipath, "robocorp": _robocorp, "leapwork": _leapwork,
            "workato": _workato, "bridge": _polled}  # fmt: skip


def parse(event: CloudEvent) -> tuple[list[str], RunState]:
    """The run keys (vendor run id, correlation id) and state a completion event carries.

    A Leapwork or Workato callback names its run by the correlation id when it gives one,
    and by nothing else: that id is what the run's callback token vouches for
    (receiver/runtoken.py), so a token cannot complete a run named by another field."""
    return _PARSERS[event.type.split(".", 1)[0]](event)


async def on_completion(event: CloudEvent, resources: Resources, log: Any) -> None:
    """Find the run, win its completion once, write back."""
    keys, state = parse(event)
    run = await _find(resources, state.vendor, keys)
    if run is None:
        log.info("run.unknown", vendor=state.vendor, keys=keys)  # not started by us
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
    await write_back_once(completed, resources, log)


async def write_back_once(run: Run, resources: Resources, log: Any) -> None:
    """Write a completed run's outcome back, then mark it written back."""
    await write_back(run, _rule(resources, run.rule), resources, log)
    await resources.database.runs.written_back(run.id)
    log.info("run.written_back", run_id=run.run_id, outcome=run.outcome,
             fact_sheet_id=run.fact_sheet_id)  # fmt: skip


async def _find(resources: Resources, vendor: str, keys: list[str]) -> Run | None:
    for key in keys:
        if key:
            run = await resources.database.runs.find(vendor, key)
            if run is not None:
                return run
    return None


def _rule(resources: Resources, name: str) -> Rule | None:
    return next((r for r in resources.rules if r.name == name), None)
