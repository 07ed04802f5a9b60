"""Workspaces: the LeanIX workspaces one deployment serves, and which one an event is from.

    [[leanix.workspaces]] set  -> one Workspace per entry: its name, its workspaceId, its
                                  API settings (token, base URL, technical users to ignore),
                                  its webhook Authorization values and PULL subscription id
    not set                    -> one Workspace, "default", from [clients.leanix] and
                                  [sources.leanix], serving events of any workspace

An event's workspace is the id in its CloudEvent source, `leanix:<workspaceId>` (from the
payload's workspaceId, service/vendors/normalise.py). An Authorization value belongs to
one workspace: the receiver refuses an event that names another workspace, and gives an
event that names none the value's workspace. Pure configuration: no clients, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.settings import LeanixApi, Settings

DEFAULT = "default"  # the one workspace of the single-workspace configuration
SOURCE = "leanix"  # an event's CloudEvent source is "leanix" or "leanix:<workspaceId>"


@dataclass(frozen=True)
class Workspace:
    name: str
    id: str | None  # None: the single-workspace configuration, which takes any workspace
    api: LeanixApi  # this workspace's client settings
    authorization: tuple[str, ...] = field(default=(), repr=False)
    pull_subscription_id: str = ""  # PULL: an override of the lookup by identifier

    @property
    def source(self) -> str | None:
        """The CloudEvent source of this workspace's events; None if any."""
        return f"{SOURCE}:{self.id}" if self.id else None

    def names(self) -> frozenset[str]:
        """What a rule's `when.workspace` may call it: its name and its id."""
        return frozenset(n for n in (self.name, self.id) if n)


def configured(settings: Settings) -> tuple[Workspace, ...]:
    """Every workspace served, from [[leanix.workspaces]] or the single-workspace keys."""
    api = settings.clients.leanix
    if not settings.leanix.workspaces:
        authorization = settings.sources.leanix.authorization
        override = settings.leanix_pull.subscription_id
        return (Workspace(DEFAULT, None, api, authorization, override),)
    return tuple(
        Workspace(
            ws.name,
            ws.id,
            dataclasses.replace(
                api,
                base_url=ws.base_url or api.base_url,
                api_token=ws.api_token,
                ignore_user_ids=(*api.ignore_user_ids, *ws.ignore_user_ids),
            ),
            ws.authorization,
            ws.pull_subscription_id,
        )
        for ws in settings.leanix.workspaces
    )


def named(settings: Settings, name: str | None) -> tuple[Workspace, ...]:
    """Every workspace served, or only the one called `name` (by name or id); ValueError
    naming the known ones if none is."""
    every = configured(settings)
    if name is None:
        return every
    chosen = tuple(w for w in every if name in w.names())
    if not chosen:
        raise ValueError(f"no workspace {name!r}: {', '.join(w.name for w in every)}")
    return chosen


def id_of(source: str) -> str | None:
    """The workspaceId in a CloudEvent source `leanix:<id>`; None for any other source."""
    prefix, colon, workspace_id = source.partition(":")
    return workspace_id if prefix == SOURCE and colon and workspace_id else None


def find(workspaces: Sequence[Workspace], workspace_id: str | None) -> Workspace | None:
    """The workspace of an event's workspace id: the one with that id, else one taking any."""
    exact = next((w for w in workspaces if w.id is not None and w.id == workspace_id), None)
    return exact or next((w for w in workspaces if w.id is None), None)


def scopes(settings: Settings) -> frozenset[str]:
    """Every name and id a rule's `when.workspace` may give; empty with the single-workspace
    configuration, whose rules may give any workspaceId."""
    if not settings.leanix.workspaces:
        return frozenset()
    return frozenset(n for w in configured(settings) for n in w.names())
