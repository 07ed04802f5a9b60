"""Robocorp callbacks: a Control Room webhook or run callback, authenticated, normalised
and read.

    POST /callbacks/robocorp   x-rc-signature: <hex HMAC-SHA256 of the body>
    {"id": ..., "event": "process_run.completed", "payload": {"processRunId": ...}}

The event is `robocorp.process_run.<state>`; the run is named by its process run id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.cloudevent import CloudEvent
from service.errors import MalformedEvent
from service.runs import RunState, RunStatus
from service.vendors.adapter import Completion, SharedKeys
from service.vendors.normalise import Facts, event_type, optional, segment, text, words
from service.vendors.signatures import BodyHmac, Verifier
from service.vendors.tables import HmacSource

COMPLETIONS = ("robocorp.process_run.*",)
_STATUS = {"completed": "succeeded", "unresolved": "failed", "started": "running"}


def verifier(source: HmacSource, keys: SharedKeys) -> Verifier | None:
    """The hex HMAC of the body with the webhook secret; None if no secret is set."""
    return BodyHmac("x-rc-signature", "hex", source.secrets) if source.secrets else None


_RUN_ID_KEYS = ("processRunId", "process_run_id", "runId", "run_id")


def normalise(payload: dict[str, Any]) -> Facts:
    """A Control Room webhook or per-run callback.

    The exact payload is unconfirmed in Robocorp's docs (reference/vendors.md): the
    envelope has `id`, `webhookEventTimestamp` and `event`; we also accept `type` or a
    bare `state`, look for the run id in several places, and take a timestamp that is a
    number (epoch seconds or milliseconds) as well as text. A field of an unexpected type
    counts as missing: only a payload with no event at all is refused.
    """
    event = _event(payload)
    inner = payload.get("payload")
    inner = inner if isinstance(inner, dict) else {}
    workspace = inner.get("workspaceId") or payload.get("workspaceId")
    entity, _, action = event.rpartition(".")
    return Facts(
        source=f"robocorp:{workspace}" if workspace else "robocorp",
        type=f"robocorp.{segment(words(entity or 'process_run'))}.{segment(words(action))}",
        subject=_run_id(inner) or _run_id(payload),
        time=_time(payload.get("webhookEventTimestamp")) or _time(payload.get("timestamp")),
        sender_id=text(optional(payload, "id", str, int)),
    )


def _event(payload: dict[str, Any]) -> str:
    for key in ("event", "type", "eventType"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return event_type(value, key) or value
    state = payload.get("state")
    if isinstance(state, str) and state:
        return f"process_run.{event_type(state, 'state')}"
    raise MalformedEvent("a Robocorp webhook needs an 'event' such as 'process_run.completed'")


def _time(value: Any) -> str | None:
    """An ISO 8601 time from text, or from epoch seconds or milliseconds; else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if value > 1e11 else value  # 1e11 s is the year 5138
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_id(doc: dict[str, Any]) -> str | None:
    for key in _RUN_ID_KEYS:
        if doc.get(key) is not None:
            return str(doc[key])
    for key in ("processRun", "process_run"):
        run = doc.get(key)
        if isinstance(run, dict) and run.get("id") is not None:
            return str(run["id"])
    return None


# --- Leapwork and Workato callbacks (our own documented shapes) ---------------------------


def completion(event: CloudEvent) -> Completion:
    """The run a webhook reports on (by process run id), and its state."""
    word = event.type.rsplit(".", 1)[-1]
    status: RunStatus = _STATUS.get(word, "running")  # type: ignore[assignment]
    run_id = event.subject or ""
    return Completion((run_id,), RunState("robocorp", run_id, status, word))
