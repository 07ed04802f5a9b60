"""Workato callbacks: a recipe's completion, authenticated, normalised and read.

    POST /callbacks/workato   {"status": "completed"|"failed", "jobId": ..., "correlationId": ...}

A recipe cannot sign, so each run is given its own token (a Standard Webhooks signature
with a secret the recipe holds is accepted too: adapter.signed_or_run_token). The event
is `workato.job.completed` or `workato.job.failed`; the run is named by the correlation id
the token vouches for, else by the job id.
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

COMPLETIONS = ("workato.job.*",)


def verifier(source: CallbackSource, keys: SharedKeys) -> Verifier | None:
    """The run's own token, or a Standard Webhooks signature; None if neither is set."""
    return signed_or_run_token("workato", source.secrets, keys)


_STATUS = {
    "completed": "completed",
    "succeeded": "completed",
    "success": "completed",
    "failed": "failed",
    "error": "failed",
}


def normalise(payload: dict[str, Any]) -> Facts:
    """`{"status": "completed"|"failed", "jobId": ..., "correlationId": ..., ...}` from a recipe."""
    status = optional(payload, "status", str)
    action = _STATUS.get((status or "").lower())
    if action is None:
        raise MalformedEvent("a Workato callback needs 'status': 'completed' or 'failed'")
    subject = optional(payload, "jobId", str, int)
    if subject is None or subject == "":
        subject = optional(payload, "correlationId", str) or None
    if subject is None:
        raise MalformedEvent("a Workato callback needs 'jobId' or 'correlationId'")
    return Facts(
        source="workato",
        type=f"workato.job.{action}",
        subject=str(subject),
        time=optional(payload, "completedAt", str),
    )


def completion(event: CloudEvent) -> Completion:
    """The run a recipe's callback completes (by correlation id, else job id), and how."""
    data = event_data(event)
    status: RunStatus = "succeeded" if event.type.endswith(".completed") else "failed"
    error = data.get("error")
    keys = [str(data.get(k)) for k in ("correlationId", "jobId") if data.get(k)]
    state = RunState("workato", keys[-1] if keys else "", status, str(data.get("status")),
                     outputs(data), None if error is None else str(error))  # fmt: skip
    return Completion(tuple(keys[:1]), state)
