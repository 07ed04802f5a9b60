"""Normalisers: a sender's parsed payload -> the facts of its CloudEvent.

Each function takes the JSON object a source posted and returns a `Facts`: the type
`<source>.<entity>.<action>`, the subject, the sender's timestamp and own event id.
They are tolerant (optional fields may be missing; unknown fields are kept in `data`)
and raise MalformedEvent only for what cannot be an event of that source. A sender's
event type longer than a routing key (255 bytes) is refused before any work on it, and
only short names are cached: nothing a sender sends can grow the memory held here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, wraps
from typing import Any, TypeVar

from service.errors import MalformedEvent

_CAMEL_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_NON_WORD = re.compile(r"[^a-z0-9_]+")
ROUTING_KEY_BYTES = 255  # AMQP's limit: an event type of ours is a routing key
CACHED_NAME_CHARS = 64  # longer names are worked out each time, never cached

_Result = TypeVar("_Result")
_caches: list[Any] = []


@dataclass(frozen=True)
class Facts:
    source: str
    type: str
    subject: str | None = None
    time: str | None = None
    sender_id: str | None = None


def _cached_if_short(work: Callable[[str], _Result]) -> Callable[[str], _Result]:
    """Cache `work` for names up to CACHED_NAME_CHARS: at most 1024 of them, a few KiB."""
    cached = lru_cache(maxsize=1024)(work)
    _caches.append(cached)

    @wraps(work)
    def lookup(name: str) -> _Result:
        return cached(name) if len(name) <= CACHED_NAME_CHARS else work(name)

    return lookup


def cached_names() -> int:
    """How many names the caches hold (each at most CACHED_NAME_CHARS long)."""
    return sum(cache.cache_info().currsize for cache in _caches)


def event_type(value: str | None, key: str) -> str | None:
    """A sender's event type, refused if it is longer than a routing key can be."""
    if value is not None and (
        len(value) > ROUTING_KEY_BYTES
        or len(value.encode("utf-8", "surrogatepass")) > ROUTING_KEY_BYTES
    ):
        raise MalformedEvent(f"field {key!r} is longer than {ROUTING_KEY_BYTES} bytes")
    return value


@_cached_if_short
def _words(name: str) -> tuple[str, ...]:
    if "_" in name or name.isupper():
        return tuple(w for w in name.lower().split("_") if w)
    return tuple(w.lower() for w in _CAMEL_WORD.findall(name))


def words(name: str) -> list[str]:
    """Lower-case words of a CamelCase, snake_case or UPPER_SNAKE name."""
    return list(_words(name))


def segment(parts: list[str]) -> str:
    """One routing-key word (no dots) from a list of words."""
    return _NON_WORD.sub("_", "_".join(parts)).strip("_") or "unknown"


def _optional(payload: dict[str, Any], key: str, *kinds: type) -> Any:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(k.__name__.replace("str", "string") for k in kinds)
        raise MalformedEvent(f"field {key!r} must be a {names}")
    return value


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- LeanIX -------------------------------------------------------------------------------


@_cached_if_short
def _leanix_type(raw: str) -> str | None:
    """`FactSheetUpdatedEvent` or `FACT_SHEET_UPDATED` -> `factsheet.updated`; else None."""
    if raw.endswith("Event") and raw[:1].isupper():
        parts = words(raw[: -len("Event")])
    elif re.fullmatch(r"[A-Z]+(?:_[A-Z]+)+", raw):
        parts = words(raw)
    else:
        return None
    if len(parts) < 2:
        return None
    if parts[:2] == ["fact", "sheet"]:
        parts = ["factsheet", *parts[2:]]
    return f"{segment(parts[:-1])}.{segment(parts[-1:])}"


def _unwrap(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(envelope, event) for WRAPPED_EVENT deliveries; (payload, payload) otherwise."""
    inner = payload.get("payload")
    wrapped = isinstance(inner, dict) and any(
        k in payload for k in ("sourceName", "tags", "sequenceInfo", "sourceId")
    )
    return (payload, inner) if wrapped else (payload, payload)  # type: ignore[return-value]


def leanix(payload: dict[str, Any]) -> Facts:
    """A LeanIX PUSH delivery: DEFAULT, WRAPPED_EVENT, or rewritten by a callback script."""
    if not payload:
        raise MalformedEvent("empty LeanIX event: use payloadMode DEFAULT or WRAPPED_EVENT")
    envelope, event = _unwrap(payload)
    raw_type = event_type(_optional(event, "type", str) or _optional(envelope, "type", str), "type")
    event_id = _optional(envelope, "id", str, int)
    workspace = _optional(envelope, "workspaceId", str) or _optional(event, "workspaceId", str)
    fact_sheet = _optional(event, "factSheet", dict)
    created = _optional(envelope, "createdAt", str) or _optional(event, "createdAt", str)
    source = f"leanix:{workspace}" if workspace else "leanix"
    kind = _leanix_type(raw_type) if raw_type else None
    if kind is None:
        # A body reshaped by a LeanIX callback script: no event type, maybe no event id.
        subject = (fact_sheet or {}).get("id") or _optional(event, "id", str, int)
        return Facts(source, "leanix.callback.received", _text(subject), created)
    subject = (fact_sheet or {}).get("id") or _relation_id(event)
    sender_id = f"{workspace}/{event_id}" if event_id is not None else None
    return Facts(source, f"leanix.{kind}", _text(subject), created, sender_id)


def _relation_id(event: dict[str, Any]) -> Any:
    relation = event.get("relation")
    return relation.get("id") if isinstance(relation, dict) else None


# --- UiPath -------------------------------------------------------------------------------

_UIPATH_SUBJECTS = ("Job", "QueueItem", "Robot", "Process", "Trigger")


def uipath(payload: dict[str, Any]) -> Facts:
    """An Orchestrator webhook: `{"Type": "job.completed", "EventId": ..., "Job": {...}}`."""
    raw_type = event_type(_optional(payload, "Type", str), "Type")
    if not raw_type or "." not in raw_type:
        raise MalformedEvent("a UiPath webhook needs a Type such as 'job.completed'")
    entity, _, action = raw_type.partition(".")
    kind = f"{segment(words(entity))}.{segment(words(action))}"
    tenant = _optional(payload, "TenantId", str, int)
    return Facts(
        source=f"uipath:{tenant}" if tenant is not None else "uipath",
        type=f"uipath.{kind}",
        subject=_uipath_subject(payload),
        time=_optional(payload, "Timestamp", str),
        sender_id=_text(_optional(payload, "EventId", str, int)),
    )


def _uipath_subject(payload: dict[str, Any]) -> str | None:
    for name in _UIPATH_SUBJECTS:
        item = payload.get(name)
        many = payload.get(f"{name}s")
        if not isinstance(item, dict) and isinstance(many, list) and many:
            item = many[0]  # job.stopped carries "Jobs": [...]
        if isinstance(item, dict) and item.get("Id") is not None:
            return str(item["Id"])
    return None


# --- Robocorp -----------------------------------------------------------------------------

_RUN_ID_KEYS = ("processRunId", "process_run_id", "runId", "run_id")


def robocorp(payload: dict[str, Any]) -> Facts:
    """A Control Room webhook or per-run callback.

    The exact payload is unconfirmed in Robocorp's docs (reference/vendors.md): the
    envelope has `id`, `webhookEventTimestamp` and `event`; we also accept `type` or a
    bare `state`, look for the run id in several places, and take a timestamp that is a
    number (epoch seconds or milliseconds) as well as text. A field of an unexpected type
    counts as missing: only a payload with no event at all is refused.
    """
    event = _robocorp_event(payload)
    inner = payload.get("payload")
    inner = inner if isinstance(inner, dict) else {}
    workspace = inner.get("workspaceId") or payload.get("workspaceId")
    entity, _, action = event.rpartition(".")
    return Facts(
        source=f"robocorp:{workspace}" if workspace else "robocorp",
        type=f"robocorp.{segment(words(entity or 'process_run'))}.{segment(words(action))}",
        subject=_robocorp_run_id(inner) or _robocorp_run_id(payload),
        time=_robocorp_time(payload.get("webhookEventTimestamp"))
        or _robocorp_time(payload.get("timestamp")),
        sender_id=_text(_optional(payload, "id", str, int)),
    )


def _robocorp_event(payload: dict[str, Any]) -> str:
    for key in ("event", "type", "eventType"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return event_type(value, key) or value
    state = payload.get("state")
    if isinstance(state, str) and state:
        return f"process_run.{event_type(state, 'state')}"
    raise MalformedEvent("a Robocorp webhook needs an 'event' such as 'process_run.completed'")


def _robocorp_time(value: Any) -> str | None:
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


def _robocorp_run_id(doc: dict[str, Any]) -> str | None:
    for key in _RUN_ID_KEYS:
        if doc.get(key) is not None:
            return str(doc[key])
    for key in ("processRun", "process_run"):
        run = doc.get(key)
        if isinstance(run, dict) and run.get("id") is not None:
            return str(run["id"])
    return None


# --- Leapwork and Workato callbacks (our own documented shapes) ---------------------------


def leapwork(payload: dict[str, Any]) -> Facts:
    """`{"runId": ..., "status": "Finished", "result": "Passed"|"Failed", ...}` from a flow."""
    run_id = _optional(payload, "runId", str)
    if not run_id:
        raise MalformedEvent("a Leapwork callback needs 'runId' (the run's RunId)")
    return Facts(
        source="leapwork",
        type="leapwork.run.finished",
        subject=run_id,
        time=_optional(payload, "finishedAt", str),
    )


_WORKATO_STATUS = {
    "completed": "completed",
    "succeeded": "completed",
    "success": "completed",
    "failed": "failed",
    "error": "failed",
}


def workato(payload: dict[str, Any]) -> Facts:
    """`{"status": "completed"|"failed", "jobId": ..., "correlationId": ..., ...}` from a recipe."""
    status = _optional(payload, "status", str)
    action = _WORKATO_STATUS.get((status or "").lower())
    if action is None:
        raise MalformedEvent("a Workato callback needs 'status': 'completed' or 'failed'")
    subject = _optional(payload, "jobId", str, int)
    if subject is None or subject == "":
        subject = _optional(payload, "correlationId", str) or None
    if subject is None:
        raise MalformedEvent("a Workato callback needs 'jobId' or 'correlationId'")
    return Facts(
        source="workato",
        type=f"workato.job.{action}",
        subject=str(subject),
        time=_optional(payload, "completedAt", str),
    )
