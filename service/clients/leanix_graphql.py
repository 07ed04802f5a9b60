"""LeanIX GraphQL (Pathfinder): the documents we send, the values they carry, their errors.

    documents  FACT_SHEET_FIELDS (what every read and write asks for), UPDATE_MUTATION,
               COMMENT_MUTATION, and batch_mutation: many updateFactSheet under aliases
    values     Patch (LeanIX takes every value as a string), FactSheet, Update, UpdateResult
    errors     GraphQLErrors (VendorRejected), RevisionConflict (VendorUnavailable: a rev
               stale on every try); error_code, describe, is_stale for one error of errors[];
               by_alias / errors_of / result_of split a batch answer per alias

Pure: no I/O here. The client (service/clients/leanix.py) sends these documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from service.errors import VendorRejected, VendorUnavailable

# What every read and write asks for. Only Application and ITComponent are named for the
# lifecycle because a fragment on a type the workspace lacks fails the whole query.
FACT_SHEET_FIELDS = """
    id rev name type status description lxState
    tags { id name }
    ... on Application { lifecycle { asString phases { phase startDate } } }
    ... on ITComponent { lifecycle { asString phases { phase startDate } } }
"""

UPDATE_MUTATION = f"""
mutation UpdateFactSheet(
  $id: ID!, $rev: Long, $comment: String, $patches: [Patch]!, $validateOnly: Boolean
) {{
  updateFactSheet(
    id: $id, rev: $rev, comment: $comment, patches: $patches, validateOnly: $validateOnly
  ) {{ factSheet {{ {FACT_SHEET_FIELDS} }} }}
}}
"""

COMMENT_MUTATION = """
mutation CreateComment($factSheetId: ID!, $message: String!) {
  createComment(factSheetId: $factSheetId, message: $message, status: ACTIVE) { id message }
}
"""


# The error for a stale rev is unconfirmed (reference §3.2): this is a tolerant guess that
# matches the words such an error would most likely use, in its message or its errorType.
_STALE = re.compile(
    r"(?<![a-z])(?:rev(?![a-z])|revision|version|conflict|outdated|stale)", re.IGNORECASE
)
_CODE = re.compile(r"^\s*\[([A-Z0-9_]+)\]")
_VALIDATION = "MODEL_COMPLIANT"

PatchOp = Literal["add", "replace", "remove"]
_PATCH_OPS = frozenset({"add", "replace", "remove"})


@dataclass(frozen=True)
class Patch:
    """One change to a fact sheet; LeanIX takes every value as a string."""

    op: PatchOp
    path: str
    value: str = ""

    def __post_init__(self) -> None:
        if self.op not in _PATCH_OPS:
            raise ValueError(f"a patch op is add, replace or remove, not {self.op!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"a patch path starts with '/', not {self.path!r}")
        if not isinstance(self.value, str):
            raise TypeError("patch values are strings: use Patch.json() for structured values")
        if self.op == "remove" and self.value:
            raise ValueError(f"a remove patch takes no value (path {self.path!r})")

    @classmethod
    def json(cls, op: PatchOp, path: str, obj: Any) -> Patch:
        """Make a patch whose value is `obj` encoded as JSON (lifecycle, tags, relations)."""
        return cls(op, path, orjson.dumps(obj).decode())

    def variable(self) -> dict[str, str]:
        """Return the GraphQL `Patch` input; a remove carries no value."""
        if self.op == "remove":
            return {"op": self.op, "path": self.path}
        return {"op": self.op, "path": self.path, "value": self.value}


@dataclass(frozen=True)
class FactSheet:
    """A fact sheet as read back: the common fields, the rest in `fields`, and the raw node."""

    id: str
    rev: int
    name: str
    type: str
    status: str
    tags: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> FactSheet:
        """Build from a GraphQL fact sheet object, tolerating missing fields."""
        tags = tuple(str(tag["name"]) for tag in node.get("tags") or () if isinstance(tag, Mapping))
        common = {"id", "rev", "name", "type", "status", "tags"}
        return cls(
            id=str(node.get("id") or ""),
            rev=as_int(node.get("rev")),
            name=str(node.get("name") or ""),
            type=str(node.get("type") or node.get("__typename") or ""),
            status=str(node.get("status") or ""),
            tags=tags,
            fields={k: v for k, v in node.items() if k not in common},
            raw=dict(node),
        )

    @property
    def lifecycle(self) -> dict[str, str | None]:
        """Phase -> start date, e.g. {"active": "2023-08-31"}; empty when not read or unset."""
        value = self.fields.get("lifecycle")
        phases = value.get("phases") if isinstance(value, Mapping) else None
        return {
            str(p["phase"]): p.get("startDate")
            for p in phases or ()
            if isinstance(p, Mapping) and p.get("phase")
        }


@dataclass(frozen=True)
class Update:
    """One fact sheet's patches, for update_many; a rev of None is read first."""

    id: str
    patches: Sequence[Patch]
    comment: str | None = None
    rev: int | None = None


@dataclass(frozen=True)
class UpdateResult:
    """What became of one Update: the fact sheet as written, or the errors of its alias."""

    update: Update
    fact_sheet: FactSheet | None = None
    errors: tuple[Mapping[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return self.fact_sheet is not None and not self.errors


class RevisionConflict(VendorUnavailable):
    """A fact sheet changed under every one of our writes (a stale rev each time): the
    write may well succeed later, so the event is retried on its schedule."""

    def __init__(self, fact_sheet_id: str, attempts: int, last: GraphQLErrors) -> None:
        super().__init__(
            "leanix", f"fact sheet {fact_sheet_id} changed under each of {attempts} writes: {last}"
        )
        self.errors = last.errors


class GraphQLErrors(VendorRejected):
    """LeanIX answered with GraphQL `errors[]`; `.errors` holds them as sent."""

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        self.errors = list(errors)
        super().__init__("leanix", "; ".join(describe(e) for e in self.errors))

    @property
    def codes(self) -> list[str]:
        """The `[CODE]` prefixes of the messages, e.g. FS_VALIDATION_RELATION_NOT_UNIQUE."""
        return [code for e in self.errors if (code := error_code(e))]

    @property
    def stale(self) -> bool:
        """Whether an error looks like a stale rev (a guess: see _STALE)."""
        return any(is_stale(e) for e in self.errors)


def error_code(error: Mapping[str, Any]) -> str | None:
    """The `[CODE]` prefix of a GraphQL error message, without brackets."""
    match = _CODE.match(str(error.get("message") or ""))
    return match.group(1) if match else None


def describe(error: Mapping[str, Any]) -> str:
    """One GraphQL error as text: the message, then errorType and objectPath if given."""
    text = str(error.get("message") or "GraphQL error")[:500]
    extensions = error.get("extensions")
    if isinstance(extensions, Mapping):
        extra = [f"{k}={extensions[k]}" for k in ("errorType", "objectPath") if extensions.get(k)]
        if extra:
            text += f" ({', '.join(extra)})"
    return text


def is_stale(error: Mapping[str, Any]) -> bool:
    """Whether a GraphQL error looks like a stale rev (a tolerant guess; see _STALE). A
    MODEL_COMPLIANT error is LeanIX's validation error (reference §3.4): never stale, even
    when the field it names is called "version"."""
    extensions = error.get("extensions")
    kind = extensions.get("errorType") if isinstance(extensions, Mapping) else None
    if kind == _VALIDATION:
        return False
    return bool(_STALE.search(f"{error.get('message') or ''} {kind or ''}"))


def batch_mutation(updates: Sequence[Update]) -> tuple[str, dict[str, Any]]:
    """One mutation document with an aliased updateFactSheet per update: u0, u1, ..."""
    params: list[str] = []
    fields: list[str] = []
    variables: dict[str, Any] = {}
    for n, update in enumerate(updates):
        params.append(f"$id{n}: ID!, $rev{n}: Long, $comment{n}: String, $patches{n}: [Patch]!")
        fields.append(
            f"u{n}: updateFactSheet(id: $id{n}, rev: $rev{n}, comment: $comment{n}, "
            f"patches: $patches{n}) {{ factSheet {{ {FACT_SHEET_FIELDS} }} }}"
        )
        variables |= {
            f"id{n}": update.id,
            f"rev{n}": update.rev,
            f"comment{n}": update.comment,
            f"patches{n}": [p.variable() for p in update.patches],
        }
    return f"mutation Batch({', '.join(params)}) {{ {' '.join(fields)} }}", variables


def by_alias(answer: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str | None, list[Any]]]:
    """The answer's data, and its errors grouped by the alias in their path (None: none)."""
    data = answer.get("data")
    grouped: dict[str | None, list[Any]] = {}
    for error in error_list(answer.get("errors")):
        path = error.get("path")
        alias = path[0] if isinstance(path, list) and path and isinstance(path[0], str) else None
        grouped.setdefault(alias, []).append(error)
    return (data if isinstance(data, dict) else {}), grouped


def errors_of(
    grouped: Mapping[str | None, list[Any]], alias: str, missing: str | None = None
) -> tuple[Mapping[str, Any], ...]:
    """The errors of one alias, else those of the whole document, else `missing` if given."""
    errors = grouped.get(alias) or grouped.get(None) or ([{"message": missing}] if missing else [])
    return tuple(errors)


def result_of(update: Update, node: Any, errors: tuple[Mapping[str, Any], ...]) -> UpdateResult:
    fact_sheet = node.get("factSheet") if isinstance(node, dict) else None
    if errors or not isinstance(fact_sheet, dict):
        return UpdateResult(update, errors=errors or ({"message": "no fact sheet in answer"},))
    return UpdateResult(update, FactSheet.from_node(fact_sheet))


def error_list(errors: Any) -> list[Mapping[str, Any]]:
    if not errors:
        return []
    items = errors if isinstance(errors, list) else [errors]
    return [e if isinstance(e, Mapping) else {"message": str(e)} for e in items]


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
