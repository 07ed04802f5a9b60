"""Tables. Timestamps are unix seconds (float) so both databases store them the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

# One row per automation run the service started: recorded before the vendor is called,
# so a crash between "started" and "recorded" cannot lose a run.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("correlation_id", sa.String(100), nullable=False, unique=True),
    sa.Column("vendor", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(200), nullable=True),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("fact_sheet_id", sa.String(100), nullable=True),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=True),
    sa.Column("vendor_state", sa.String(50), nullable=True),
    sa.Column("outputs", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("run_url", sa.Text, nullable=True),
    sa.Column("completed_by", sa.String(100), nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float, nullable=True),
    sa.Column("written_back_at", sa.Float, nullable=True),
    sa.Column("next_poll_at", sa.Float, nullable=True),
    sa.Column("poll_count", sa.Integer, nullable=False, default=0),
    # The LeanIX workspaceId of the event that started it (written back there); NULL for
    # runs of an event that named none, and runs recorded before workspaces existed.
    sa.Column("workspace", sa.String(100), nullable=True),
    sa.UniqueConstraint("vendor", "run_id", name="runs_vendor_run_id"),
)
sa.Index("runs_status_next_poll", runs.c.status, runs.c.next_poll_at)
sa.Index("runs_fact_sheet", runs.c.fact_sheet_id)
sa.Index("runs_event", runs.c.event_id)  # the console: an event's runs
sa.Index("runs_run_id", runs.c.run_id)  # the console: find by a vendor's run id
sa.Index("runs_started", runs.c.started_at)  # the console: runs of the last 24 h

# Starts that wait (issue 13): for a free slot of their target (`start.concurrency`), or
# for their rule's coalescing window (`coalesce`) to close. FIFO per target by (due_at,
# id). A coalescing row is keyed by `coalesce_key` (rule and Fact Sheet), its event
# replaced by later ones; a claimed row loses the key, so later events open a new one.
# A worker starting a row holds `claimed_until`; one that died lets it lapse. A row whose
# start failed for now has no holder and `claimed_until` its retry time, `last_error` why.
waiting_starts = sa.Table(
    "waiting_starts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("correlation_id", sa.String(100), nullable=False, unique=True),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("target_key", sa.String(100), nullable=False),
    sa.Column("coalesce_key", sa.String(100), nullable=True, unique=True),
    sa.Column("fact_sheet_id", sa.String(100), nullable=True),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("event", sa.Text, nullable=False),  # the CloudEvent, as on the wire
    sa.Column("events", sa.Integer, nullable=False, default=1),  # how many it coalesced
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("due_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", sa.Float, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
)
sa.Index("waiting_starts_target", waiting_starts.c.target_key, waiting_starts.c.due_at)
sa.Index("waiting_starts_due", waiting_starts.c.due_at)

# Side effects done once: one row per (event id, handler), claimed before the work and
# marked handled after it. `token` names the claim's holder (a delivery in one worker) and
# `lease_until` when the claim lapses unless that worker renews it; rows of workers that
# predate leases have neither, and lapse `worker.handler_timeout_s` after `claimed_at`.
handled = sa.Table(
    "handled",
    metadata,
    sa.Column("event_id", sa.String(100), primary_key=True),
    sa.Column("handler", sa.String(200), primary_key=True),
    sa.Column("claimed_at", sa.Float, nullable=False),
    sa.Column("handled_at", sa.Float, nullable=True),
    sa.Column("token", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
)
sa.Index("handled_token", handled.c.token)

# The newest LeanIX transactionSequenceNumber handled per Fact Sheet (out-of-order guard).
fact_sheet_sequence = sa.Table(
    "fact_sheet_sequence",
    metadata,
    sa.Column("fact_sheet_id", sa.String(100), primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# The event log: every event the worker took, its latest status and each handling attempt.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("subject", sa.String(200), nullable=True),
    sa.Column("time", sa.String(50), nullable=True),
    sa.Column("received_at", sa.Float, nullable=False),  # first logged by a worker
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("data", sa.Text, nullable=True),  # JSON, when under the size limit
    # Every CloudEvent context attribute as on the wire (JSON; extensions too): what a
    # replay rebuilds the event from, uncut by the columns above.
    sa.Column("attributes", sa.Text, nullable=True),
    sa.Column("accepted_at", sa.Float, nullable=True),  # the receiver's 202 (`receivedat`)
)
sa.Index("events_type_time", events.c.type, events.c.received_at)
sa.Index("events_subject", events.c.subject)
sa.Index("events_status", events.c.status, events.c.received_at)
sa.Index("events_received", events.c.received_at)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(100), nullable=False),
    sa.Column("handler", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # ok, retry, dead_letter, skipped
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
)
sa.Index("attempts_event", attempts.c.event_id)

# Token buckets shared by every worker (rate limits of an API user): `tokens` is the
# bucket's level at `stamp` (unix seconds), which lies ahead while the API said to wait.
rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("stamp", sa.Float, nullable=False),
)

# Leases: one holder of a named job at a time across replicas (the puller of a LeanIX
# PULL subscription). A holder renews `until` while alive; a lapsed lease may be taken.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("until", sa.Float, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
)

# Admin API keys: only a hash of the secret part is kept.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # space-separated
    sa.Column("allow_from", sa.Text, nullable=False),  # space-separated CIDRs; empty: any
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("last_used_at", sa.Float, nullable=True),
)


def fitted(table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with text cut to its column's length: senders choose these strings, and
    PostgreSQL refuses a longer one where SQLite would store it. Keys are never cut (two
    ids must not become one): a key too long is the database's error."""
    fitted_values = dict(values)
    keys = _key_columns(table)
    for name, value in values.items():
        column = table.c.get(name)
        if column is None or name in keys or not isinstance(value, str):
            continue
        length = getattr(column.type, "length", None)
        if length is not None and len(value) > length:
            fitted_values[name] = value[:length]
    return fitted_values


def _key_columns(table: sa.Table) -> set[str]:
    """The columns of the primary key and of every unique constraint or index."""
    keys = {c.name for c in table.primary_key.columns} | {c.name for c in table.c if c.unique}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            keys |= {c.name for c in constraint.columns}
    for index in table.indexes:
        if index.unique:
            keys |= {c.name for c in index.columns}
    return keys
