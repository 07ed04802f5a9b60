"""Poller: completes runs whose callback never came.

UiPath disables a failing webhook for an hour and never retries; Leapwork has no
webhook; any callback can be lost. Every `poll_interval_s` the worker asks the vendor
about runs due a poll (first after `poll_initial_s`, then doubling up to `poll_max_s`).
A finished run is published as a `bridge.run.completed` event, so it completes through
the same path, and the same exactly-once guard, as a callback. Every worker runs a
poller; a run is claimed (its next poll moved on) before it is polled, so one worker
polls it per round. A run still open past its platform's `run_deadline_s` (Workato: a
recipe may never call back, and may not be pollable) completes as `timed_out`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import structlog

from service.automation.completion import POLLED
from service.cloudevent import CloudEvent, encode
from service.errors import BrokerUnavailable, VendorRejected, VendorUnavailable
from service.resources import Resources
from service.runs import RunClient, RunState
from service.store.runs import Run

log = structlog.get_logger("service.poller")
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:leanix-bridge:polled")


class Poller:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings.automation

    async def run(self, stop: asyncio.Event) -> None:
        """Poll due runs until `stop` is set."""
        while not stop.is_set():
            try:
                await self.poll_due()
            except Exception as exc:  # a bad round must not end polling for good
                log.error("poller.round_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval_s):
                    await stop.wait()

    async def poll_due(self) -> int:
        """Poll every run due now; return how many."""
        due = await self.resources.database.runs.due(time.time())
        for run in due:
            await self.poll(run)
        return len(due)

    async def poll(self, run: Run) -> None:
        client = self.resources.runners.get(run.vendor)
        if client is None or run.run_id is None:
            return
        # Every worker polls: one claims the run, the others leave it for this round.
        lease = time.time() + self.settings.poll_max_s
        if not await self.resources.database.runs.claim_poll(run, lease):
            return
        state = await self._status(client, run)
        state = overdue(run, state, client.run_deadline_s) or state
        if state is not None and state.terminal:
            await self._publish(run, state)
        # A state without a word of its own (Workato's, unpolled) keeps the last one.
        await self._later(run, (state.vendor_state if state else "") or run.vendor_state or "")

    async def _status(self, client: RunClient, run: Run) -> RunState | None:
        """The run's state as the vendor tells it; None if it could not be asked."""
        assert run.run_id is not None
        try:
            return await client.status(run.run_id, run.target)
        except (VendorUnavailable, VendorRejected) as exc:
            log.warning(
                "poller.status_failed", run_id=run.run_id, vendor=run.vendor, error=str(exc)
            )
            return None

    async def _later(self, run: Run, vendor_state: str) -> None:
        wait = min(self.settings.poll_max_s, self.settings.poll_initial_s * 2**run.poll_count)
        await self.resources.database.runs.polled(run.id, time.time() + wait, vendor_state)

    async def _publish(self, run: Run, state: RunState) -> None:
        event = CloudEvent(
            id=str(uuid.uuid5(_NAMESPACE, f"{run.vendor}/{run.run_id}")),
            source="bridge:poller",
            type=POLLED,
            subject=run.run_id,
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            data={
                "vendor": run.vendor, "runId": run.run_id, "correlationId": run.correlation_id,
                "status": state.status, "vendorState": state.vendor_state,
                "outputs": dict(state.outputs), "detail": state.detail, "url": state.url,
            },
        )  # fmt: skip
        try:
            await self.resources.broker.publish(
                encode(event), routing_key=event.type, message_id=event.id, timeout_s=10
            )
        except BrokerUnavailable as exc:
            log.warning("poller.publish_failed", run_id=run.run_id, error=str(exc))
            return
        log.info("run.polled_complete", run_id=run.run_id, vendor=run.vendor, status=state.status)


def overdue(run: Run, state: RunState | None, deadline_s: float | None) -> RunState | None:
    """A timed-out state for an open run older than its platform's deadline, else None."""
    if deadline_s is None or (state is not None and state.terminal):
        return None
    age = time.time() - run.started_at
    if age < deadline_s:
        return None
    if state is None:
        last = "the platform could not be asked"
    else:
        last = state.detail or f"still {state.vendor_state or state.status}"
    detail = f"no completion {age:.0f} s after the start (deadline {deadline_s:g} s); last: {last}"
    vendor_state = (state.vendor_state if state is not None else "") or run.vendor_state or ""
    return RunState(run.vendor, run.run_id or "", "timed_out", vendor_state, detail=detail)
