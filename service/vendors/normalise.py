"""Normalisers: a sender's parsed payload -> the facts of its CloudEvent.

A normaliser takes the JSON object a source posted and returns a `Facts`: the type
`<source>.<entity>.<action>`, the subject, the sender's timestamp and own event id. This
module holds LeanIX's, and the kit every platform's own (service/vendors/<name>/
callback.py) is built from: `Facts`, `event_type`, `words`, `segment`, `optional`, `text`.
Normalisers are tolerant (optional fields may be missing; unknown fields are kept in
`data`) and raise MalformedEvent only for what cannot be an event of that source. A
sender's event type longer than a routing key (255 bytes) is refused before any work on
it, and only short names are cached: nothing a sender sends can grow the memory held here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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


def cached_if_short(work: Callable[[str], _Result]) -> Callable[[str], _Result]:
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


@cached_if_short
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


def optional(payload: dict[str, Any], key: str, *kinds: type) -> Any:
    """`payload[key]` if it is one of `kinds`, None if absent; else MalformedEvent."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(k.__name__.replace("str", "string") for k in kinds)
        raise MalformedEvent(f"field {key!r} must be a {names}")
    return value


def text(value: Any) -> str | None:
    """A value as text, None staying None."""
    return None if value is None else str(value)


# --- LeanIX -------------------------------------------------------------------------------


@cached_if_short
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
    raw_type = event_type(optional(event, "type", str) or optional(envelope, "type", str), "type")
    event_id = optional(envelope, "id", str, int)
    workspace = optional(envelope, "workspaceId", str) or optional(event, "workspaceId", str)
    fact_sheet = optional(event, "factSheet", dict)
    created = optional(envelope, "createdAt", str) or optional(event, "createdAt", str)
    source = f"leanix:{workspace}" if workspace else "leanix"
    kind = _leanix_type(raw_type) if raw_type else None
    if kind is None:
        # A body reshaped by a LeanIX callback script: no event type, maybe no event id.
        subject = (fact_sheet or {}).get("id") or optional(event, "id", str, int)
        return Facts(source, "leanix.callback.received", text(subject), created)
    subject = (fact_sheet or {}).get("id") or _relation_id(event)
    sender_id = f"{workspace}/{event_id}" if event_id is not None else None
    return Facts(source, f"leanix.{kind}", text(subject), created, sender_id)


def _relation_id(event: dict[str, Any]) -> Any:
    relation = event.get("relation")
    return relation.get("id") if isinstance(relation, dict) else None
