"""UiPath callbacks: an Orchestrator tenant webhook, authenticated, normalised and read.

    POST /callbacks/uipath   X-UiPath-Signature: <base64 HMAC-SHA256 of the body>
    {"Type": "job.completed", "EventId": ..., "Job": {...}}

The event is `uipath.<entity>.<action>`; a job event's run is named by the job's Id (the
run id we keep) or its Key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.cloudevent import CloudEvent
from service.errors import MalformedEvent
from service.vendors.adapter import Completion, SharedKeys, event_data
from service.vendors.normalise import Facts, event_type, optional, segment, text, words
from service.vendors.signatures import BodyHmac, Verifier
from service.vendors.tables import HmacSource
from service.vendors.uipath.client import job_run_state

COMPLETIONS = ("uipath.job.*",)


def verifier(source: HmacSource, keys: SharedKeys) -> Verifier | None:
    """The base64 HMAC of the body with the webhook secret; None if no secret is set."""
    secrets = source.secrets
    return BodyHmac("X-UiPath-Signature", "base64", secrets) if secrets else None


_SUBJECTS = ("Job", "QueueItem", "Robot", "Process", "Trigger")


def normalise(payload: dict[str, Any]) -> Facts:
    """An Orchestrator webhook: `{"Type": "job.completed", "EventId": ..., "Job": {...}}`."""
    raw_type = event_type(optional(payload, "Type", str), "Type")
    if not raw_type or "." not in raw_type:
        raise MalformedEvent("a UiPath webhook needs a Type such as 'job.completed'")
    entity, _, action = raw_type.partition(".")
    kind = f"{segment(words(entity))}.{segment(words(action))}"
    tenant = optional(payload, "TenantId", str, int)
    return Facts(
        source=f"uipath:{tenant}" if tenant is not None else "uipath",
        type=f"uipath.{kind}",
        subject=_subject(payload),
        time=optional(payload, "Timestamp", str),
        sender_id=text(optional(payload, "EventId", str, int)),
    )


def _subject(payload: dict[str, Any]) -> str | None:
    for name in _SUBJECTS:
        item = payload.get(name)
        many = payload.get(f"{name}s")
        if not isinstance(item, dict) and isinstance(many, list) and many:
            item = many[0]  # job.stopped carries "Jobs": [...]
        if isinstance(item, dict) and item.get("Id") is not None:
            return str(item["Id"])
    return None


def completion(event: CloudEvent) -> Completion:
    """The job a webhook reports on (by Id, then Key), and its state."""
    data = event_data(event)
    job = data.get("Job")
    jobs = data.get("Jobs")
    if not isinstance(job, Mapping) and isinstance(jobs, list) and jobs:
        job = jobs[0]
    job = job if isinstance(job, Mapping) else {}
    state = job_run_state(job)
    # A webhook's job has no Reference (contracts/uipath.json): it is matched by its Id,
    # which is the run id we keep, or by its Key.
    key = job.get("Key")
    return Completion((state.run_id, *([str(key)] if key else [])), state)
