"""The LeanIX simulator's fact sheets: how one is stored, changed by patches, and shown.

A patch the model does not accept, a write at a stale rev and a missing fact sheet raise
LeanIX-shaped GraphQL errors (`[CODE] text` with errorType and objectId); the codes of the
last two are guesses. `view` is a fact sheet as GraphQL serves it, `snapshot` as a webhook
carries it. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from graphql import GraphQLError

from service.simulators.leanix_schema import (
    FACT_SHEET_TYPES,
    LX_STATES,
    PHASES,
    STATUSES,
    TYPED_FIELDS,
)

_EMPTY_LISTS = (
    *("relations", "documents", "milestones", "naFields"),
    *("subscriptions", "permittedReadACL", "permittedWriteACL"),
)


def timestamp() -> str:
    """Now, as LeanIX writes it: ISO 8601 in UTC, ending in Z."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class SimFactSheet:
    """A stored fact sheet; tests may change it directly (e.g. bump `rev`)."""

    id: str
    type: str
    name: str
    rev: int = 0
    status: str = "ACTIVE"
    description: str = ""
    lx_state: str = "DRAFT"
    phases: dict[str, str] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)  # {"id", "name"}
    fields: dict[str, str] = field(default_factory=dict)  # any other /<field>, raw
    created_at: str = field(default_factory=timestamp)
    updated_at: str = field(default_factory=timestamp)


Patcher = Callable[[SimFactSheet, str, str, str, str], None]  # fs, op, rest, value, path


class PatchRejected(Exception):
    """A patch the model does not accept."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path


def _error(code: str, text: str, fact_sheet_id: str, error_type: str, **more: str) -> GraphQLError:
    """A LeanIX-shaped GraphQL error: `[CODE] text` with errorType and objectId."""
    extensions = {"entityType": "FACT_SHEET", "objectId": fact_sheet_id, "errorType": error_type}
    return GraphQLError(f"[{code}] {text}", extensions=extensions | more)


def not_found(fact_sheet_id: str) -> GraphQLError:
    """The error for a fact sheet that does not exist (code and errorType are guesses)."""
    text = f"Fact sheet {fact_sheet_id} does not exist"
    return _error("FS_NOT_FOUND", text, fact_sheet_id, "NOT_FOUND")


def create(type: str, name: str, fields: dict[str, Any], tag_ids: dict[str, str]) -> SimFactSheet:
    """A new fact sheet from `LeanixSimulator.add_fact_sheet`'s keywords.

    New tag names get an id in `tag_ids` (name -> id).
    """
    if type not in FACT_SHEET_TYPES:
        raise ValueError(f"unknown fact sheet type {type!r}")
    fields = dict(fields)
    fs = SimFactSheet(str(uuid.uuid4()), type, name)
    fs.description = str(fields.pop("description", ""))
    fs.lx_state = str(fields.pop("lxState", fs.lx_state))
    fs.status = str(fields.pop("status", fs.status))
    fs.phases = {str(k): str(v) for k, v in fields.pop("lifecycle", {}).items()}
    fs.tags = [_tag(tag_ids, {"tagName": str(n)}, "/tags") for n in fields.pop("tags", [])]
    for key, value in fields.items():
        raw = value if isinstance(value, str) else orjson.dumps(value).decode()
        fs.fields[key] = raw
    return fs


def check_rev(current: SimFactSheet, rev: Any) -> None:
    """Refuse a write at another rev than the stored one (the error text is a guess)."""
    if rev is None:
        return
    if not isinstance(rev, int) or isinstance(rev, bool):
        raise _error("FS_VALIDATION_INVALID_REV", "rev must be a number", current.id, "INPUT")
    if rev != current.rev:
        text = f"The fact sheet was changed meanwhile: rev {rev} is not the latest ({current.rev})"
        raise _error("FS_VALIDATION_REVISION_MISMATCH", text, current.id, "REVISION_MISMATCH")


def apply(fs: SimFactSheet, patch: dict[str, Any], tag_ids: dict[str, str]) -> None:
    """Apply one patch, or raise the error LeanIX answers with; new tags go into `tag_ids`."""
    op, path, value = patch.get("op"), str(patch.get("path") or ""), patch.get("value")
    head, _, rest = path.removeprefix("/").partition("/")
    try:
        if not head or not path.startswith("/"):
            raise PatchRejected(path, f"{path!r} is not a patch path")
        if op == "remove" and value is not None:  # the docs' removes carry no value
            raise PatchRejected(path, "a remove patch takes no value")
        patcher = _patchers(tag_ids).get(head)
        if patcher is None:
            _patch_field(fs, str(op), path.removeprefix("/"), value or "", path)
        else:
            patcher(fs, str(op), rest, value or "", path)
    except PatchRejected as exc:
        code, kind = "FS_VALIDATION_INVALID_PATCH", "MODEL_COMPLIANT"
        raise _error(code, str(exc), fs.id, kind, objectPath=exc.path) from None


# --- patches ------------------------------------------------------------------------------


def _json(value: str, path: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise PatchRejected(path, f"the value of {path} is not JSON") from None


def _date(value: str, path: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise PatchRejected(path, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _one_of(value: str, allowed: frozenset[str], path: str) -> str:
    if value not in allowed:
        raise PatchRejected(path, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _set_only(op: str, path: str) -> None:
    if op == "remove":
        raise PatchRejected(path, f"{path} cannot be removed")


def _patch_name(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    _set_only(op, path)
    if not value.strip():
        raise PatchRejected(path, "the name must not be empty")
    fs.name = value


def _patch_description(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    fs.description = "" if op == "remove" else value


def _patch_lx_state(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    _set_only(op, path)
    fs.lx_state = _one_of(value, LX_STATES, path)


def _patch_status(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    _set_only(op, path)
    fs.status = _one_of(value, STATUSES, path)


def _patch_lifecycle(fs: SimFactSheet, op: str, rest: str, value: str, path: str) -> None:
    """Set the whole lifecycle (overwriting every phase) or, at /lifecycle/<phase>, one."""
    if rest:
        _one_of(rest, frozenset(PHASES), path)
        if op == "remove":
            fs.phases.pop(rest, None)
        else:
            fs.phases[rest] = _date(value, path)
        return
    doc = {} if op == "remove" else _json(value, path)
    phases = doc.get("phases", []) if isinstance(doc, dict) else None
    if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
        raise PatchRejected(path, 'a lifecycle is {"phases": [{"phase", "startDate"}, ...]}')
    fs.phases = {
        _one_of(str(p.get("phase")), frozenset(PHASES), path): _date(p.get("startDate"), path)
        for p in phases
    }


def _patch_field(fs: SimFactSheet, op: str, key: str, value: str, path: str) -> None:
    if op == "remove":
        fs.fields.pop(key, None)
    else:
        fs.fields[key] = value


def _patch_tags(
    tag_ids: dict[str, str], fs: SimFactSheet, op: str, rest: str, value: str, path: str
) -> None:
    """add: attach tags; replace: set the whole list; remove: detach every tag."""
    refs = [] if op == "remove" else _json(value, path)
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise PatchRejected(path, 'tags are [{"tagName": ...} or {"tagId": ...}, ...]')
    tags = [_tag(tag_ids, ref, path) for ref in refs]
    if op == "add":
        fs.tags += [t for t in tags if t not in fs.tags]
    elif op == "replace":
        fs.tags = tags
    else:  # remove
        fs.tags = []


def _tag(tag_ids: dict[str, str], ref: dict[str, Any], path: str) -> dict[str, str]:
    """The tag a reference names: an existing tagId, or a tagName (created if new)."""
    if "tagId" in ref:
        names = [n for n, i in tag_ids.items() if i == ref["tagId"]]
        if not names:
            raise PatchRejected(path, f"no tag has the id {ref['tagId']!r}")
        return {"id": str(ref["tagId"]), "name": names[0]}
    name = str(ref.get("tagName") or "").strip()
    if not name:
        raise PatchRejected(path, "a tag needs a tagName or a tagId")
    tag_id = tag_ids.setdefault(name, str(uuid.uuid4()))
    return {"id": tag_id, "name": name}


_PATCHERS: dict[str, Patcher] = {
    "name": _patch_name,
    "description": _patch_description,
    "lxState": _patch_lx_state,
    "status": _patch_status,
    "lifecycle": _patch_lifecycle,
}


def _patchers(tag_ids: dict[str, str]) -> dict[str, Patcher]:
    """What patches each top-level path; tags need the workspace's tag ids."""
    return _PATCHERS | {"tags": functools.partial(_patch_tags, tag_ids)}


# --- views --------------------------------------------------------------------------------


def _current_phase(phases: dict[str, str]) -> str | None:
    today = date.today().isoformat()
    started = [p for p in PHASES if p in phases and phases[p] <= today]
    return started[-1] if started else None


def _lifecycle(fs: SimFactSheet) -> dict[str, Any] | None:
    if not fs.phases:
        return None
    phases = [{"phase": p, "startDate": fs.phases[p]} for p in PHASES if p in fs.phases]
    return {"asString": _current_phase(fs.phases), "phases": phases}


def view(fs: SimFactSheet) -> dict[str, Any]:
    """The fact sheet as GraphQL serves it."""
    stored = dict(fs.fields)
    doc: dict[str, Any] = {
        "__typename": fs.type,
        **{key: stored.get(key) for key in TYPED_FIELDS},
        "id": fs.id,
        "rev": fs.rev,
        "name": fs.name,
        "displayName": fs.name,
        "fullName": fs.name,
        "type": fs.type,
        "status": fs.status,
        "description": fs.description,
        "lxState": fs.lx_state,
        "tags": [dict(tag) for tag in fs.tags],
        "lifecycle": _lifecycle(fs),
        "createdAt": fs.created_at,
        "updatedAt": fs.updated_at,
    }
    doc["field"] = lambda info, key: stored.get(key)
    return doc


def _field_data(key: str, raw: str) -> dict[str, Any]:
    return {"name": key, "data": {"type": "StringValue", "value": raw}}


def snapshot(fs: SimFactSheet) -> dict[str, Any]:
    """The fact sheet as a webhook carries it (reference Samples A and B)."""
    fields = [_field_data(k, v) for k, v in fs.fields.items() if "/" not in k]
    if fs.description:
        fields.insert(0, _field_data("description", fs.description))
    if fs.phases:
        phases = [
            {"startDate": fs.phases[p], "milestoneId": None, "phase": p}
            for p in PHASES
            if p in fs.phases
        ]
        fields.insert(0, {"name": "lifecycle", "data": {"type": "Lifecycle", "phases": phases}})
    doc = {
        "id": fs.id,
        "rev": fs.rev,
        "name": fs.name,
        "displayName": fs.name,
        "fullName": fs.name,
        "type": fs.type,
        "level": 1,
        "fields": fields,
        "status": fs.status,
        "lxState": fs.lx_state,
        "createdAt": fs.created_at,
        "updatedAt": fs.updated_at,
        **{key: [] for key in _EMPTY_LISTS},
        "lxExcludeFromQuota": False,
    }
    if fs.tags:  # a guess: the samples have no tags, so they may only be left out when empty
        doc["tags"] = [dict(tag) for tag in fs.tags]
    return doc
