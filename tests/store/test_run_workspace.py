"""A run records the LeanIX workspace of the event that started it: its write-back goes
there. Stores made before workspaces gain the column, their runs keep working."""

from __future__ import annotations

import sqlalchemy as sa

from service.store import Database
from service.store.migrations import MIGRATIONS, migrate
from service.store.schema import schema_migrations

RUN = dict(vendor="uipath", rule="r", event_id="e-1", fact_sheet_id="fs-1", target={}, inputs={})


async def test_a_run_keeps_its_workspace(database: Database) -> None:
    run, _ = await database.runs.begin(correlation_id="c-1", workspace="ws-sand", **RUN)
    assert run.workspace == "ws-sand"
    other, _ = await database.runs.begin(correlation_id="c-2", **RUN)
    assert other.workspace is None  # an event that named no workspace


async def test_the_column_is_added_to_a_store_made_before_it(database: Database) -> None:
    await database.runs.begin(correlation_id="c-0", **RUN)
    version = next(m.version for m in MIGRATIONS if m.name == "run workspace")
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("ALTER TABLE runs DROP COLUMN workspace"))
        forget = schema_migrations.delete().where(schema_migrations.c.version == version)
        await connection.execute(forget)
    assert await migrate(database.engine) == [version]
    old = await database.runs.by_correlation("c-0")
    assert old is not None and old.workspace is None  # rows kept
    run, _ = await database.runs.begin(correlation_id="c-1", workspace="ws-prod", **RUN)
    assert run.workspace == "ws-prod"
