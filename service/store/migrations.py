"""Schema migrations: an ordered list, applied once each, inside one transaction per step.

Append a step; never edit one that has shipped. Every process runs `migrate()` at start;
concurrent starts are safe because each step is recorded in `schema_migrations` by
version (a primary key) in the transaction that applies it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.store import schema


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sa.Connection], None]


def _create(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def apply(connection: sa.Connection) -> None:
        for table in tables:
            table.create(connection, checkfirst=True)
            for index in table.indexes:
                index.create(connection, checkfirst=True)

    return apply


def _add_columns(table: sa.Table, *names: str) -> Callable[[sa.Connection], None]:
    """Add the columns `names` of `table` (as schema.py has them) that it lacks, and its
    indexes: a table created by an earlier step from today's schema.py has them already."""

    def apply(connection: sa.Connection) -> None:
        present = {c["name"] for c in sa.inspect(connection).get_columns(table.name)}
        preparer = connection.dialect.identifier_preparer
        for name in names:
            if name in present:
                continue
            column = table.c[name]
            kind = column.type.compile(dialect=connection.dialect)
            connection.execute(
                sa.text(
                    f"ALTER TABLE {preparer.format_table(table)} "
                    f"ADD COLUMN {preparer.format_column(column)} {kind}"
                )
            )
        for index in table.indexes:
            index.create(connection, checkfirst=True)

    return apply


def _indexes(table: sa.Table, *names: str) -> Callable[[sa.Connection], None]:
    """Create the indexes `names` of `table` (as schema.py has them) where missing."""

    def apply(connection: sa.Connection) -> None:
        for index in table.indexes:
            if index.name in names:
                index.create(connection, checkfirst=True)

    return apply


CONSOLE_INDEXES = ("runs_event", "runs_run_id", "runs_started")
MIGRATION_LOCK = 0x6272_6964_6765  # "bridge": the advisory lock migrations take in turn
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs", _create(schema.runs)),
    Migration(2, "handled events", _create(schema.handled)),
    Migration(3, "fact sheet sequence", _create(schema.fact_sheet_sequence)),
    Migration(4, "event log", _create(schema.events, schema.attempts)),
    Migration(5, "admin api keys", _create(schema.api_keys)),
    Migration(6, "shared rate limits", _create(schema.rate_limits)),
    Migration(7, "claim leases", _add_columns(schema.handled, "token", "lease_until")),
    Migration(8, "named leases", _create(schema.leases)),
    Migration(9, "run workspace", _add_columns(schema.runs, "workspace")),
    Migration(10, "console indexes", _indexes(schema.runs, *CONSOLE_INDEXES)),
    Migration(11, "waiting starts", _create(schema.waiting_starts)),
    Migration(12, "event attributes", _add_columns(schema.events, "attributes", "accepted_at")),
    Migration(13, "waiting start errors", _add_columns(schema.waiting_starts, "last_error")),
)


async def migrate(engine: AsyncEngine) -> list[int]:
    """Apply the migrations not applied yet; return their versions."""
    async with engine.begin() as connection:
        await _one_at_a_time(connection)
        await connection.run_sync(_create(schema.schema_migrations))
    applied = []
    for migration in MIGRATIONS:
        async with engine.begin() as connection:
            await _one_at_a_time(connection)
            if await _is_applied(connection, migration.version):
                continue
            await connection.run_sync(migration.apply)
            await connection.execute(
                schema.schema_migrations.insert().values(
                    version=migration.version, name=migration.name, applied_at=time.time()
                )
            )
            applied.append(migration.version)
    return applied


async def _one_at_a_time(connection: AsyncConnection) -> None:
    """On PostgreSQL, hold a lock until this transaction ends: processes that start at once
    (pods of one deployment) would otherwise race to create the same tables."""
    if connection.dialect.name == "postgresql":
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))


async def _is_applied(connection: AsyncConnection, version: int) -> bool:
    query = sa.select(schema.schema_migrations.c.version).where(
        schema.schema_migrations.c.version == version
    )
    return (await connection.execute(query)).first() is not None
