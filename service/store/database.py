"""Database: the engine, opened and migrated once per process, and the stores over it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import ConfigError
from service.store import connections
from service.store.eventlog import EventLog
from service.store.handled import HandledStore
from service.store.keys import KeyStore
from service.store.leases import LeaseStore
from service.store.migrations import migrate
from service.store.ratelimit import RateLimitStore
from service.store.runs import RunStore
from service.store.sequence import SequenceStore
from service.store.waiting import WaitingStore

log = structlog.get_logger("service.store")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the receiver-side readers and the worker write at the same time; the busy
    # timeout makes a second process wait for a lock instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """Owns the engine; `runs`, `handled` and `sequences` are the stores over it."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError("store.url", "not a database URL") from None
        if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ConfigError("store.url", "use sqlite+aiosqlite:/// or postgresql+asyncpg://")
        self.safe_url = parsed.render_as_string(hide_password=True)
        self.engine: AsyncEngine = connections.engine(url)
        if parsed.drivername.startswith("sqlite"):
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.runs = RunStore(self.engine)
        self.handled = HandledStore(self.engine)
        self.sequences = SequenceStore(self.engine)
        self.events = EventLog(self.engine)
        self.keys = KeyStore(self.engine)
        self.rate_limits = RateLimitStore(self.engine)
        self.leases = LeaseStore(self.engine)
        self.waiting = WaitingStore(self.engine)

    def __repr__(self) -> str:
        return f"<Database {self.safe_url}>"

    async def open(self) -> None:
        """Migrate the schema to the newest version."""
        applied = await migrate(self.engine)
        log.info("store.ready", url=self.safe_url, migrations_applied=applied)

    async def close(self) -> None:
        await self.engine.dispose()
