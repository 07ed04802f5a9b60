"""Claims with leases and tokens, on both databases: the store side of service/worker/claims.py."""

from __future__ import annotations

import sqlalchemy as sa
import structlog

from service.automation import starter
from service.resources import Resources
from service.settings import Settings
from service.store import Database
from service.store.migrations import MIGRATIONS, migrate
from service.store.schema import handled, schema_migrations


async def test_a_claim_lapses_when_its_own_lease_runs_out(database: Database) -> None:
    store = database.handled
    assert await store.claim("e-1", "h", 60, token="a") == "claimed"
    assert await store.claim("e-1", "h", 0, token="b") == "busy"  # a's lease, not b's, counts
    assert await store.claim("e-2", "h", 0, token="a") == "claimed"  # lapses at once
    assert await store.claim("e-2", "h", 60, token="b") == "claimed"  # taken over
    assert not await store.mark("e-2", "h", token="a")  # the old holder changes nothing
    await store.release("e-2", "h", token="a")
    assert await store.claim("e-2", "h", 60, token="c") == "busy"  # still b's
    assert await store.mark("e-2", "h", token="b")
    assert await store.mark("e-2", "h", token="b")  # marking twice is still ours
    assert await store.claim("e-2", "h", 0, token="c") == "done"


async def test_renewing_extends_only_the_claims_still_held(database: Database) -> None:
    store = database.handled
    for event_id in ("e-1", "e-2", "e-3"):
        assert await store.claim(event_id, "h", 0, token=f"a-{event_id}") == "claimed"
    assert await store.claim("e-2", "h", 60, token="b") == "claimed"  # e-2 lapsed: taken over
    await store.mark("e-3", "h", token="a-e-3")
    kept = await store.renew(["a-e-1", "a-e-2", "a-e-3"], 60)
    assert kept == {"a-e-1"}
    assert await store.claim("e-1", "h", 60, token="c") == "busy"  # renewed: no longer lapsed
    assert await store.renew([], 60) == set()


async def test_a_claim_without_a_lease_lapses_after_the_legacy_lease(database: Database) -> None:
    """Rows of workers that predate leases have no token and no lease_until."""
    async with database.engine.begin() as connection:
        row = {"event_id": "old", "handler": "h", "claimed_at": 1000.0}
        await connection.execute(handled.insert().values(**row))
        row = {"event_id": "recent", "handler": "h", "claimed_at": 1e12}
        await connection.execute(handled.insert().values(**row))
    assert await database.handled.claim("old", "h", 10, token="a", legacy_lease_s=300) == "claimed"
    assert await database.handled.claim("recent", "h", 10, token="a", legacy_lease_s=300) == "busy"


async def test_a_mark_in_a_rolled_back_transaction_is_undone(database: Database) -> None:
    store = database.handled
    assert await store.claim("e-1", "h", 60, token="a") == "claimed"
    try:
        async with database.engine.begin() as connection:
            assert await store.mark_in(connection, "e-1", "h", "a")
            raise LookupError("the handler's write failed")
    except LookupError:
        pass
    assert not await store.is_handled("e-1", "h")
    async with database.engine.begin() as connection:
        assert not await store.mark_in(connection, "e-1", "h", "someone else")
    assert not await store.is_handled("e-1", "h")


async def test_the_lease_columns_are_added_to_a_store_made_before_them(database: Database) -> None:
    """A store migrated by the previous release: `handled` without token and lease_until."""
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("DROP TABLE handled"))
        await connection.execute(
            sa.text(
                "CREATE TABLE handled (event_id VARCHAR(100) NOT NULL, handler VARCHAR(200) "
                "NOT NULL, claimed_at FLOAT NOT NULL, handled_at FLOAT, "
                "PRIMARY KEY (event_id, handler))"
            )
        )
        await connection.execute(sa.text("INSERT INTO handled VALUES ('e-0', 'h', 1.0, 2.0)"))
        version = next(m.version for m in MIGRATIONS if m.name == "claim leases")
        forget = schema_migrations.delete().where(schema_migrations.c.version == version)
        await connection.execute(forget)
    assert await migrate(database.engine) == [version]
    assert await database.handled.claim("e-0", "h", 60, token="a") == "done"  # rows kept
    assert await database.handled.claim("e-1", "h", 60, token="a") == "claimed"
    assert await database.handled.renew(["a"], 60) == {"a"}


async def test_a_run_left_starting_by_a_dead_starter_is_taken_over_at_once(
    database: Database,
) -> None:
    """Only the holder of the event's automation.start claim reaches a `starting` run, so
    a fresh one was left by a delivery that died or lost its claim: no waiting it out."""
    run, created = await database.runs.begin(
        correlation_id="c-1", vendor="uipath", rule="r", event_id="e-1", fact_sheet_id="fs-1",
        target={}, inputs={},
    )  # fmt: skip
    assert created
    resources = Resources(Settings(), None, database, None)  # type: ignore[arg-type]
    assert await starter._ours(run, resources, structlog.get_logger())
