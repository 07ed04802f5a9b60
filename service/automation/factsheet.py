"""The Fact Sheet an event is about, flattened for rules and templates.

LeanIX sends a full snapshot with `fields: [{"name", "data": {"type", ...}}]`; bodies
reshaped by a callback script use `[{"key", "value": {...}}]`. Both become
`fields[name] = value` (the string, keyword, number or external id; a lifecycle keeps
its phases), so a rule says `fields = { category = "applicationSystem" }`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

_VALUE_KEYS = ("value", "keyword", "externalId", "phases")


def snapshot(data: Any) -> dict[str, Any] | None:
    """The Fact Sheet snapshot inside a LeanIX event's data, in any payload mode."""
    if not isinstance(data, Mapping):
        return None
    for candidate in (data.get("factSheet"), _nested(data, "payload", "factSheet")):
        if isinstance(candidate, Mapping):
            return dict(candidate)
    if isinstance(data.get("id"), str) and isinstance(data.get("type"), str) and "fields" in data:
        return dict(data)  # a body a callback script reduced to the Fact Sheet itself
    return None


def _nested(data: Mapping[str, Any], *keys: str) -> Any:
    value: Any = data
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def flatten(sheet: Mapping[str, Any], today: date | None = None) -> dict[str, Any]:
    """`{id, name, type, rev, status, lx_state, tags, fields, lifecycle_phase}` of a snapshot."""
    fields = _fields(sheet.get("fields"))
    lifecycle = fields.get("lifecycle")
    return {
        "id": sheet.get("id"),
        "name": sheet.get("name") or sheet.get("displayName"),
        "type": sheet.get("type"),
        "rev": sheet.get("rev"),
        "status": sheet.get("status"),
        "lx_state": sheet.get("lxState"),
        "tags": _tags(sheet.get("tags")),
        "fields": fields,
        "lifecycle_phase": current_phase(lifecycle, today or date.today()),
    }


def _fields(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    flat: dict[str, Any] = {}
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        name = item.get("name") or item.get("key")
        data = item.get("data", item.get("value"))
        if isinstance(name, str):
            flat[name] = _value(data)
    return flat


def _value(data: Any) -> Any:
    if not isinstance(data, Mapping):
        return data
    for key in _VALUE_KEYS:
        if key in data:
            return data[key]
    return dict(data)


def _tags(raw: Any) -> list[str]:
    names = []
    for tag in raw if isinstance(raw, list) else []:
        name = tag.get("name") or tag.get("tagName") if isinstance(tag, Mapping) else tag
        if isinstance(name, str):
            names.append(name)
    return names


def current_phase(phases: Any, today: date) -> str | None:
    """The lifecycle phase in effect today: the latest one that has started."""
    current = None
    for phase in phases if isinstance(phases, list) else []:
        if not isinstance(phase, Mapping):
            continue
        started = phase.get("startDate")
        if isinstance(started, str) and started[:10] <= today.isoformat():
            current = phase.get("phase")
    return current if isinstance(current, str) else None
