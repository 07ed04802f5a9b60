"""Starter: a LeanIX event that matches rules -> one recorded, started run per rule.

The run is recorded (status `starting`) before the vendor is called, under a correlation
id derived from (event id, rule). A redelivered or replayed event finds the row: if the
run already started, nothing is started again; if the earlier attempt died between
recording and starting, or its start failed, the start is retried with the same
correlation id. Before that retry the platform is asked for a run under that id (UiPath
keeps it as the job's Reference): a start whose answer was lost is then found and
recorded, not repeated. Platforms that cannot be asked are started again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from service import workspaces
from service.automation.factsheet import flatten, snapshot
from service.automation.rules import Rule
from service.automation.templates import render
from service.cloudevent import CloudEvent
from service.errors import RejectEvent, RetryLater
from service.resources import Resources
from service.runs import RunClient, RunState
from service.store.runs import Run
from service.vendors import registry

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:leanix-bridge:run")


def correlation_id(event_id: str, rule: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event_id}/{rule}"))


def event_context(event: CloudEvent, sheet: Mapping[str, Any] | None) -> dict[str, Any]:
    """What rule templates can refer to when a run starts."""
    now = datetime.now(UTC)
    return {
        "event": {"id": event.id, "type": event.type, "subject": event.subject, "time": event.time,
                  "data": event.data},
        "fact_sheet": dict(sheet or {}),
        "now": now.isoformat(timespec="seconds"),
        "today": now.date().isoformat(),
    }  # fmt: skip


def workspace_names(event: CloudEvent, resources: Resources) -> frozenset[str]:
    """What the event's workspace is called: its workspaceId and its configured name."""
    workspace_id = workspaces.id_of(event.source)
    found = resources.workspace(workspace_id)
    return frozenset(n for n in (workspace_id, found.name if found else None) if n)


def fact_sheet_of(event: CloudEvent) -> dict[str, Any] | None:
    """The flattened Fact Sheet an event is about, if it carries one."""
    raw = snapshot(event.data)
    return flatten(raw) if raw is not None else None


async def start_runs(
    event: CloudEvent, sheet: Mapping[str, Any] | None, resources: Resources, log: Any
) -> int:
    """Start a run for every rule the event matches; return how many rules matched."""
    called = workspace_names(event, resources)
    matched = [rule for rule in resources.rules if rule.matches(event.type, sheet, called)]
    for rule in matched:
        if rule.waits:  # a limit or a window: it waits in the store (capacity.py)
            from service.automation.capacity import submit

            await submit(rule, event, sheet, resources, log.bind(rule=rule.name))
            continue
        await start_run(rule, event, sheet, resources, log.bind(rule=rule.name))
    return len(matched)


async def start_run(rule: Rule, event: CloudEvent, sheet: Mapping[str, Any] | None,
                    resources: Resources, log: Any) -> None:  # fmt: skip
    """Record the intent, start the run, record its id."""
    inputs = render(rule.inputs, event_context(event, sheet))
    if rule.dry_run:
        log.info("rule.dry_run", vendor=rule.vendor, target=dict(rule.target), inputs=inputs)
        return
    cid = correlation_id(event.id, rule.name)
    run, created = await resources.database.runs.begin(
        correlation_id=cid, vendor=rule.vendor, rule=rule.name, event_id=event.id,
        fact_sheet_id=(sheet or {}).get("id"), target=rule.target, inputs=inputs,
        workspace=workspaces.id_of(event.source),
    )  # fmt: skip
    if not created and not await _ours(run, resources, log):
        return
    try:
        found = None if created else await _earlier(rule, cid, resources, log)
        state = found or await _start(rule, cid, inputs, resources)
    except BaseException:
        await resources.database.runs.release(cid)
        raise
    poll_at = time.time() + resources.settings.automation.poll_initial_s
    await resources.database.runs.started(cid, state, poll_at)
    log.info("run.started", vendor=rule.vendor, run_id=state.run_id, correlation_id=cid)
    if state.terminal:  # answered synchronously (a Workato API recipe)
        from service.automation.completion import finish

        await finish(run, state, _sync(cid), resources, log)


async def finish_interrupted(
    event: CloudEvent, sheet: Mapping[str, Any] | None, resources: Resources, log: Any
) -> None:
    """Write back the runs of this event that answered their start with an outcome, when
    that write-back failed: this delivery is the event's retry. Done before any guard, as
    a newer event handled meanwhile must not leave the outcome unwritten."""
    from service.automation.completion import write_back_once

    called = workspace_names(event, resources)
    for rule in resources.rules:
        if rule.dry_run or not rule.matches(event.type, sheet, called):
            continue
        cid = correlation_id(event.id, rule.name)
        run = await resources.database.runs.by_correlation(cid)
        if run is not None and run.status == "completed" and run.completed_by == _sync(cid):
            log.info("run.write_back_resumed", run_id=run.run_id, rule=rule.name)
            await write_back_once(run, resources, log)


def _sync(cid: str) -> str:
    """What completes a run whose start answered with its outcome (completed_by)."""
    return f"sync:{cid}"


async def _ours(run: Run, resources: Resources, log: Any) -> bool:
    """Whether this delivery may start a run recorded by an earlier one."""
    if run.status != "starting":
        log.info("run.already_started", run_id=run.run_id, status=run.status)
        return False
    # Only the delivery holding this event's automation.start claim gets here, and a claim
    # excludes every other delivery (service/worker/claims.py): a run still `starting` was
    # left by a starter that died, or lost its claim, mid-way. Take it over at once.
    if await resources.database.runs.take_over(run, 0.0):
        log.warning("run.start_taken_over", correlation_id=run.correlation_id)
        return True
    raise RetryLater("another delivery of this event is starting the run")


async def _earlier(rule: Rule, cid: str, resources: Resources, log: Any) -> RunState | None:
    """The run an earlier, unrecorded start created under `cid`, if the platform knows one."""
    found = await _client(rule, resources).find(rule.target, cid)
    if found is not None:
        log.warning("run.start_found", vendor=rule.vendor, run_id=found.run_id, correlation_id=cid)
    return found


def _client(rule: Rule, resources: Resources) -> RunClient:
    client = resources.runners.get(rule.vendor)
    if client is None:
        raise RejectEvent(f"rule {rule.name}: the {rule.vendor} client is not configured")
    return client


async def _start(rule: Rule, cid: str, inputs: Any, resources: Resources) -> RunState:
    client = _client(rule, resources)
    url, secret = callback_for(rule.vendor, resources, cid)
    return await client.start(
        rule.target, inputs, correlation_id=cid, callback_url=url, callback_secret=secret
    )


def callback_for(
    vendor: str, resources: Resources, correlation_id: str = ""
) -> tuple[str | None, str | None]:
    """Where and with what credential a run should call back; (None, None) to poll only.

    The platform says what its run is given (its adapter's `running.credential`): Robocorp
    signs with its webhook secret; a Leapwork flow or a Workato recipe cannot sign, so
    each run gets its own token, bound to its correlation id (callback_tokens.py); UiPath
    calls back through its tenant webhook, if configured, so gets nothing.
    """
    base_url = resources.settings.automation.callback_base_url
    if not base_url:
        return None, None
    platform = registry.platform(vendor)
    sources = resources.settings.sources
    secret = platform.running.credential(
        platform.source_settings(sources), registry.shared_keys(sources), correlation_id
    )
    if secret is None:
        return None, None
    return base_url.rstrip("/") + platform.receiving.path, secret
