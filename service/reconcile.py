"""Reconciliation: publish what lost webhooks missed (`python -m service reconcile`).

    rules   the rules whose `on` matches leanix.factsheet.reconciled (others never act on
            such an event, so nothing is asked for them), and the Fact Sheet types they name
    LeanIX  allFactSheets, paginated (forward cursors, PAGE_SIZE a page), through the LeanIX
            client and its pacer (the store's shared bucket, as the workers use); each Fact
            Sheet changed since `--since` whose rule conditions hold
    store   skipped when a run for it was recorded at or after its last change (its change
            was handled: that run's own write-back is the change, or came after it)
    bus     one `leanix.factsheet.reconciled` CloudEvent each, published persistent with
            the broker's confirm like a webhook; its data is the Fact Sheet in the webhook's
            snapshot shape, so the rules decide as for any event

Each workspace is reconciled through its own client (its token, its URL; `--workspace`
picks one), and its events carry it in `source` (leanix:<workspaceId>) as its pushed ones
do; rules scoped with `when.workspace` act on their workspace's Fact Sheets only. The
worker may run this on a schedule (service/reconciliation.py).

The event id is derived from the Fact Sheet's id and rev: reconciling the same change
twice gives the same id, which the worker handles once. A dry run (the default) publishes
nothing and prints what it would publish.

Unconfirmed and tolerated: LeanIX documents no filter on updatedAt, so the change time is
read and compared here; rules' `when.fields` conditions are not checked here (custom fields
are per type in GraphQL) and the snapshot carries no custom fields, so a rule with them does
not fire on a reconciled event.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from service import workspaces
from service.automation.factsheet import flatten
from service.automation.rules import Rule
from service.automation.rules import load as load_rules
from service.bus.broker import Broker
from service.bus.topics import topic_matches
from service.clients.leanix import LeanixClient
from service.cloudevent import CloudEvent, encode, event_id
from service.errors import ConfigError, VendorRejected, VendorUnavailable
from service.resources import leanix_pace
from service.settings import Settings
from service.store.database import Database
from service.store.runs import RunStore
from service.workspaces import Workspace

EVENT_TYPE = "leanix.factsheet.reconciled"
PAGE_SIZE = 100
CLOCK_SKEW_S = 60.0  # LeanIX's clock and ours: a run this much before a change still counts
QUERY = """
query Reconcile($first: Int!, $after: String, $filter: FilterInput) {
  allFactSheets(first: $first, after: $after, filter: $filter) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id rev name type status lxState updatedAt
      tags { id name }
      ... on Application { lifecycle { phases { phase startDate } } }
      ... on ITComponent { lifecycle { phases { phase startDate } } }
    } }
  }
}
"""


@dataclass(frozen=True)
class Candidate:
    """A Fact Sheet to reconcile, and the rules that would act on it."""

    snapshot: dict[str, Any]
    changed_at: datetime
    rules: tuple[str, ...]


def listening(rules: Sequence[Rule]) -> list[Rule]:
    """The rules that act on reconciled events."""
    return [r for r in rules if any(topic_matches(p, EVENT_TYPE) for p in r.patterns)]


def fact_sheet_filter(rules: Sequence[Rule]) -> dict[str, Any] | None:
    """A FactSheetTypes facet filter, unless some rule takes any type."""
    types = [t for rule in rules for t in rule.when.fact_sheet_types]
    if not types or any(not rule.when.fact_sheet_types for rule in rules):
        return None
    facet = {"facetKey": "FactSheetTypes", "keys": sorted(set(types))}
    return {"facetFilters": [facet]}


async def fact_sheets(
    client: LeanixClient, filter: dict[str, Any] | None
) -> AsyncIterator[dict[str, Any]]:
    """Every Fact Sheet the filter selects, a page at a time."""
    after: str | None = None
    while True:
        variables = {"first": PAGE_SIZE, "after": after, "filter": filter}
        page = (await client.graphql(QUERY, variables)).get("allFactSheets") or {}
        for edge in page.get("edges") or []:
            if isinstance(edge, dict) and isinstance(edge.get("node"), dict):
                yield edge["node"]
        info = page.get("pageInfo") or {}
        after = info.get("endCursor")
        if not info.get("hasNextPage") or not after:
            return


def snapshot(node: Mapping[str, Any]) -> dict[str, Any]:
    """A GraphQL node in the shape of a webhook's factSheet snapshot."""
    sheet = {k: node.get(k) for k in ("id", "rev", "name", "type", "status", "lxState")}
    sheet["updatedAt"] = node.get("updatedAt")
    sheet["tags"] = [{"name": t.get("name")} for t in node.get("tags") or []]
    lifecycle = node.get("lifecycle")
    phases = lifecycle.get("phases") if isinstance(lifecycle, dict) else None
    fields = [{"name": "lifecycle", "data": {"type": "Lifecycle", "phases": phases}}]
    sheet["fields"] = fields if phases else []
    return sheet


def changed_at(node: Mapping[str, Any]) -> datetime | None:
    raw = node.get("updatedAt")
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def acting(
    rules: Sequence[Rule], sheet: Mapping[str, Any], workspace: Collection[str] = ()
) -> tuple[str, ...]:
    """The rules whose conditions hold for a snapshot (custom fields aside), in the
    workspace called `workspace` (its name and id)."""
    flat = flatten(sheet)
    return tuple(rule.name for rule in rules if rule.matches(EVENT_TYPE, flat, workspace))


async def candidates(
    client: LeanixClient,
    rules: Sequence[Rule],
    since: datetime,
    workspace: Collection[str] = (),
) -> AsyncIterator[Candidate]:
    """The Fact Sheets changed since `since` that a rule would act on."""
    async for node in fact_sheets(client, fact_sheet_filter(rules)):
        when = changed_at(node)
        if when is None or when < since:
            continue
        sheet = snapshot(node)
        names = acting(rules, sheet, workspace)
        if names:
            yield Candidate(sheet, when, names)


async def handled(runs: RunStore, candidate: Candidate) -> bool:
    """Whether a run was recorded for this Fact Sheet at or after its last change."""
    change = candidate.changed_at.timestamp() - CLOCK_SKEW_S
    for run in await runs.search(fact_sheet_id=str(candidate.snapshot["id"]), limit=20):
        if max(run.started_at, run.written_back_at or 0.0) >= change:
            return True
    return False


def cloud_event(candidate: Candidate, workspace: str | None) -> CloudEvent:
    """The reconciled event; the same change always gets the same id."""
    sheet = candidate.snapshot
    origin = f"leanix:{workspace}" if workspace else "leanix"
    return CloudEvent(
        id=event_id(origin, f"reconciled/{sheet['id']}/{sheet.get('rev')}", b""),
        source=origin,
        type=EVENT_TYPE,
        time=datetime.now(UTC).isoformat(),
        subject=str(sheet["id"]),
        data={"factSheet": sheet, "reason": "reconciled", "changedAt": sheet["updatedAt"]},
    )


@dataclass
class Outcome:
    published: list[CloudEvent]
    skipped: int  # changed, but a run was recorded
    workspace: str = workspaces.DEFAULT  # the name of the workspace reconciled
    failed: str = field(default="")  # why this workspace could not be reconciled


async def reconcile(
    client: LeanixClient,
    runs: RunStore,
    broker: Broker | None,
    rules: Sequence[Rule],
    since: datetime,
    publish_timeout_s: float = 5.0,
    workspace: Workspace | None = None,
) -> Outcome:
    """Find what was missed in the client's workspace (configured as `workspace`, if
    given); publish it unless `broker` is None (a dry run)."""
    outcome = Outcome([], 0, workspace.name if workspace else workspaces.DEFAULT)
    workspace_id = (workspace.id if workspace else None) or await _workspace(client)
    called = {*(workspace.names() if workspace else ()), *([workspace_id] if workspace_id else [])}
    async for candidate in candidates(client, rules, since, called):
        if await handled(runs, candidate):
            outcome.skipped += 1
            continue
        event = cloud_event(candidate, workspace_id)
        if broker is not None:
            await broker.publish(
                encode(event),
                routing_key=event.type,
                message_id=event.id,
                timeout_s=publish_timeout_s,
            )
        outcome.published.append(event)
    return outcome


async def _workspace(client: LeanixClient) -> str | None:
    """The workspace of the technical user's token (events carry it in `source`)."""
    await client.authenticate()
    return client.workspace_id


async def reconcile_each(
    clients: Sequence[tuple[Workspace, LeanixClient]],
    runs: RunStore,
    broker: Broker | None,
    rules: Sequence[Rule],
    since: datetime,
    publish_timeout_s: float = 5.0,
) -> list[Outcome]:
    """Reconcile each workspace through its own client; one that fails (LeanIX down, its
    token refused) is reported and the others are still reconciled."""
    outcomes = []
    for workspace, client in clients:
        try:
            outcome = await reconcile(
                client, runs, broker, rules, since, publish_timeout_s, workspace
            )
        except (VendorUnavailable, VendorRejected) as exc:
            outcome = Outcome([], 0, workspace.name, failed=str(exc)[:300])
        outcomes.append(outcome)
    return outcomes


def chosen(settings: Settings, name: str | None) -> tuple[Workspace, ...]:
    """The workspaces to reconcile (every one with a token, or the one named); ConfigError
    naming the key otherwise."""
    try:
        named = workspaces.named(settings, name)
    except ValueError as exc:
        raise ConfigError("--workspace", str(exc)) from None
    with_token = tuple(w for w in named if w.api.api_token)
    if not with_token:
        key = "leanix.workspaces" if settings.leanix.workspaces else "clients.leanix.api_token"
        raise ConfigError(key, "reconcile reads LeanIX: set $LEANIX_API_TOKEN")
    return with_token


async def run_command(
    settings: Settings, since: datetime, publish: bool, workspace: str | None = None
) -> int:
    """Reconcile each workspace (or the one named); print what was (or would be)
    published. 0, or 1 when a workspace could not be reconciled."""
    rules = listening(load_rules(settings.rules))
    targets = chosen(settings, workspace)
    if not rules:
        print(f"no rule listens to {EVENT_TYPE}: add it (or leanix.factsheet.*) to a rule's `on`")
        return 0
    database = Database(settings.store.url)
    await database.open()
    broker = Broker(settings.amqp) if publish else None
    try:
        if broker is not None:
            await broker.start()
            await broker.wait_ready(settings.http.publish_timeout_s * 2)
        async with aiohttp.ClientSession() as session:
            clients = [
                (w, LeanixClient(session, w.api, limiter=leanix_pace(w.api, database)))
                for w in targets
            ]
            timeout_s = settings.http.publish_timeout_s
            outcomes = await reconcile_each(clients, database.runs, broker, rules, since, timeout_s)
    finally:
        if broker is not None:
            await broker.close()
        await database.close()
    grouped = bool(settings.leanix.workspaces)
    sys.stdout.write("".join(render(o, since, publish, grouped) for o in outcomes))
    return 1 if any(o.failed for o in outcomes) else 0


def render(outcome: Outcome, since: datetime, published: bool, grouped: bool = False) -> str:
    heading = [f"[workspace {outcome.workspace}]"] if grouped else []
    if outcome.failed:
        return "\n".join([*heading, f"not reconciled: {outcome.failed}"]) + "\n"
    verb = "published" if published else "would publish"
    lines = [
        f"{verb} {EVENT_TYPE} id={e.id} fact_sheet={e.subject} "
        f'({e.data["factSheet"].get("type")} "{e.data["factSheet"].get("name")}", '
        f"changed {e.data['changedAt']})"
        for e in outcome.published
    ]
    summary = (
        f"{len(outcome.published)} {verb}, {outcome.skipped} already handled by a recorded run "
        f"(changed since {since.isoformat(timespec='seconds')})"
    )
    if not published and outcome.published:
        summary += ": run again with --apply to publish"
    return "\n".join([*heading, *lines, summary]) + "\n"
