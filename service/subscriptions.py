"""Subscriptions as code: make the platforms' webhook subscriptions match the configuration.

    plan   read each platform's subscription, compare it with what the configuration wants,
           print the difference; change nothing
    apply  the same, then create or update only what differs (a second apply: no changes)

Each platform describes its subscription API as a `WebhookApi` (LeanIX in
clients/leanix_subscriptions.py, a platform's in service/vendors/<name>/webhooks.py); this
module compares and prints, and never names a platform.

Secrets are never printed, logged or put in an error: they are compared without echo. A
secret the platform does not give back is shown as "set, cannot be compared" and left as it
is, unless something else forces a full update or `--rewrite-secrets` asks for it (a
declarative tool that re-sent it on every apply would never report "no changes"). A secret
the platform generates itself (`Wanted.secret_settable = False`) cannot be applied: a
mismatch is reported with what to do instead.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import orjson

UNREADABLE = None  # a secret the platform does not give back


@dataclass(frozen=True)
class Wanted:
    """One subscription as the configuration wants it."""

    key: str  # what it is, for people: 'leanix subscription "leanix-bridge"'
    fields: Mapping[str, Any]  # compared and printed
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # compared, never shown
    secret_settable: bool = True
    secret_hint: str = ""  # what to do when a generated secret differs
    skipped: str = ""  # why this one is not managed (nothing is read or written)
    target: Mapping[str, Any] = field(default_factory=dict)  # where it lives, for its platform
    group: str = ""  # printed under this heading (a LeanIX workspace); "" with the platforms
    # Facts worth knowing beside the difference (e.g. the id a puller will use), given what
    # the platform has; printed as "= ..." lines, never compared.
    notes: Callable[[Found | None], Sequence[str]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Found:
    """One subscription as the platform has it."""

    id: str
    fields: Mapping[str, Any]
    secrets: Mapping[str, str | None] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Subscriber:
    """What a platform's subscription API is built from (adapter.Platform.webhooks): its own
    settings tables and the few service-wide values a webhook needs, not the whole Settings."""

    client: Any  # the platform's [clients.<name>] table
    source: Any  # the platform's [sources.<name>] table
    callback_base_url: str  # automation.callback_base_url
    webhook_name: str  # subscriptions.webhook_name, for platforms whose webhooks have a name
    targets: Sequence[Mapping[str, Any]] = ()  # the `start.target` of every rule on it


class WebhookApi(Protocol):
    """One platform's subscription API."""

    async def wanted(self) -> Sequence[Wanted]: ...

    async def find(self, wanted: Wanted) -> Found | None: ...

    async def create(self, wanted: Wanted) -> None: ...

    async def update(self, found: Found, wanted: Wanted) -> None: ...


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    NONE = "no changes"
    SKIP = "skipped"


@dataclass(frozen=True)
class Change:
    wanted: Wanted
    found: Found | None
    action: Action
    lines: tuple[str, ...]  # the difference, secrets masked


def compare(wanted: Wanted, found: Found | None, rewrite_secrets: bool = False) -> Change:
    """What it takes to make `found` match `wanted`."""
    if wanted.skipped:
        return Change(wanted, found, Action.SKIP, (wanted.skipped,))
    notes = tuple(f"= {note}" for note in (wanted.notes(found) if wanted.notes else ()))
    if found is None:
        lines = [f"+ {name}: {_shown(value)}" for name, value in wanted.fields.items()]
        lines += [_new_secret(wanted, name) for name in wanted.secrets]
        return Change(wanted, None, Action.CREATE, (*lines, *notes))
    lines = [
        f"~ {name}: {_shown(found.fields.get(name))} -> {_shown(value)}"
        for name, value in wanted.fields.items()
        if _canonical(found.fields.get(name)) != _canonical(value)
    ]
    secret_lines, secret_update = _secret_lines(wanted, found, rewrite_secrets)
    action = Action.UPDATE if lines or secret_update else Action.NONE
    if lines and not wanted.secret_settable:  # replaced: the platform generates a new secret
        secret_lines = [_new_secret(wanted, name) for name in wanted.secrets]
    return Change(wanted, found, action, (*lines, *secret_lines, *notes))


def _new_secret(wanted: Wanted, name: str) -> str:
    if wanted.secret_settable:
        return f"+ {name}: (secret)"
    return f"! {name}: generated anew by the platform: {wanted.secret_hint}"


def _secret_lines(wanted: Wanted, found: Found, rewrite: bool) -> tuple[list[str], bool]:
    lines: list[str] = []
    update = False
    for name, value in wanted.secrets.items():
        current = found.secrets.get(name, UNREADABLE)
        if current is UNREADABLE:
            lines.append(
                f"~ {name}: (secret) rewritten" if rewrite else f"! {name}: set, cannot be compared"
            )
            update = update or rewrite
        elif not hmac.compare_digest(current.encode(), value.encode()):
            if wanted.secret_settable:
                lines.append(f"~ {name}: (secret) differs")
                update = True
            else:
                lines.append(f"! {name}: differs: {wanted.secret_hint}")
    return lines, update


def _canonical(value: Any) -> Any:
    """Lists compare as sets: a platform may return events and tag sets in any order."""
    if isinstance(value, list | tuple):
        return sorted(orjson.dumps(_canonical(item)).decode() for item in value)
    return value


def _shown(value: Any) -> str:
    return orjson.dumps(value).decode() if value is not None else "(none)"


async def plan(apis: Sequence[WebhookApi], rewrite_secrets: bool = False) -> list[Change]:
    """Compare every wanted subscription with what its platform has."""
    changes = []
    for api in apis:
        for wanted in await api.wanted():
            found = None if wanted.skipped else await api.find(wanted)
            changes.append(compare(wanted, found, rewrite_secrets))
    return changes


async def apply(apis: Sequence[WebhookApi], rewrite_secrets: bool = False) -> list[Change]:
    """Plan, then create or update what differs; return the changes made."""
    changes = []
    for api in apis:
        for wanted in await api.wanted():
            found = None if wanted.skipped else await api.find(wanted)
            change = compare(wanted, found, rewrite_secrets)
            if change.action is Action.CREATE:
                await api.create(wanted)
            elif change.action is Action.UPDATE and change.found is not None:
                await api.update(change.found, wanted)
            changes.append(change)
    return changes


def render(changes: Sequence[Change], applied: bool) -> str:
    """The plan or the outcome of apply, for a terminal."""
    out: list[str] = []
    grouped = any(change.wanted.group for change in changes)
    heading: str | None = None
    for change in changes:
        if grouped and change.wanted.group != heading:
            heading = change.wanted.group
            out.append(f"[workspace {heading}]" if heading else "[platforms]")
        verb = change.action.value
        if applied:
            verb = {Action.CREATE: "created", Action.UPDATE: "updated"}.get(change.action, verb)
        out.append(f"{change.wanted.key}: {verb}")
        out.extend(f"    {line}" for line in change.lines)
    out.append(_summary(changes, applied))
    return "\n".join(out) + "\n"


def _summary(changes: Sequence[Change], applied: bool) -> str:
    counts = {action: sum(c.action is action for c in changes) for action in Action}
    counts[Action.NONE] += counts[Action.SKIP]
    if not counts[Action.CREATE] and not counts[Action.UPDATE]:
        return "no changes"  # what apply then does; a second apply always ends so
    done = ("created", "updated") if applied else ("to create", "to update")
    return (
        f"{counts[Action.CREATE]} {done[0]}, {counts[Action.UPDATE]} {done[1]}, "
        f"{counts[Action.NONE]} unchanged"
        + ("" if applied else ": run `python -m service subscriptions apply` to make them so")
    )
