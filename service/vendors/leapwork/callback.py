"""Leapwork callbacks: a flow's completion, authenticated, normalised and read.

    POST /callbacks/leapwork   {"runId": ..., "status": "Finished", "result": "Passed", ...}

A flow cannot sign, so each run is given its own token (a Standard Webhooks signature
with a secret the flow holds is accepted too: adapter.signed_or_run_token). The event is
`leapwork.run.finished`; the run is named by the correlation id the token vouches for,
else by its RunId.
"""

from __future__ import annotations

from typing import Any

from service.cloudevent import CloudEvent
from service.errors import MalformedEvent
from service.runs import RunState, RunStatus
from service.vendors.adapter import Completion, SharedKeys, event_data, outputs, signed_or_run_token
from service.vendors.normalise import Facts, optional
from service.vendors.signatures import Verifier
from service.vendors.tables import CallbackSource

COMPLETIONS = ("leapwork.run.finished",)


def verifier(source: CallbackSource, keys: SharedKeys) -> Verifier | None:
    """The run's own token, or a Standard Webhooks signature; None if neither is set."""
    return signed_or_run_token("leapwork", source.secrets, keys)


def normalise(payload: dict[str, Any]) -> Facts:
    """`{"runId": ..., "status": "Finished", "result": "Passed"|"Failed", ...}` from a flow."""
    run_id = optional(payload, "runId", str)
    if not run_id:
        raise MalformedEvent("a Leapwork callback needs 'runId' (the run's RunId)")
    return Facts(
        source="leapwork",
        type="leapwork.run.finished",
        subject=run_id,
        time=optional(payload, "finishedAt", str),
    )


def completion(event: CloudEvent) -> Completion:
    """The run a flow's callback completes (by correlation id, else RunId), and how."""
    data = event_data(event)
    result = str(data.get("result") or "")
    status: RunStatus = "succeeded" if result.lower() in ("pass", "passed") else "failed"
    state = RunState("leapwork", str(data.get("runId")), status, result or "Finished",
                     outputs(data))  # fmt: skip
    correlation_id = str(data.get("correlationId") or "")
    return Completion((correlation_id,) if correlation_id else (state.run_id,), state)
