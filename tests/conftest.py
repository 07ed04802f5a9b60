"""Fixtures shared by every tier. Each test gets its own exchange and queue names."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from service import logs
from service.bus import topology
from service.settings import LogSettings, Settings, from_mapping
from service.store import Database
from tests import cluster, senders

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://bridge_test:bridge_test@127.0.0.1:5432/postgres"
)
RUN_PREFIX = f"test-{secrets.token_hex(4)}"
_counter = itertools.count()


CLUSTER_TESTS = "tests/faults/test_cluster_failover.py"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the three-node cluster now, in the background, if a cluster test will run."""
    if session.config.option.collectonly:
        return
    if any(item.nodeid.startswith(CLUSTER_TESTS) for item in session.items):
        cluster.start_for_session()


def pytest_sessionfinish(session: pytest.Session) -> None:
    cluster.stop_for_session()
    drop_templates()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in cluster.REPORT:
        terminalreporter.write_line(line)


@pytest.fixture
def prefix() -> str:
    """Names unique to this test run and this test."""
    return f"{RUN_PREFIX}-{next(_counter)}"


def settings_tree(prefix: str, amqp_url: str = AMQP_URL) -> dict[str, Any]:
    return {
        "http": {"host": "127.0.0.1", "port": 0, "publish_timeout_s": 2.0, "shutdown_grace_s": 5.0},
        "amqp": {
            "url": amqp_url,
            "exchange": f"{prefix}.events",
            "queue": f"{prefix}.worker",
            "connect_retry_s": 0.2,
        },
        "sources": {
            "leanix": {"authorization": [senders.LEANIX_AUTH_OLD, senders.LEANIX_AUTH]},
            "uipath": {"secrets": [senders.UIPATH_SECRET]},
            "robocorp": {"secrets": [senders.ROBOCORP_SECRET]},
            "leapwork": {"secrets": [senders.WHSEC]},
            "workato": {"secrets": [senders.WHSEC]},
            "callback_signing_keys": [senders.CALLBACK_SIGNING_KEY],
        },
        "log": {"format": "json"},
    }


@pytest.fixture
def make_settings(prefix: str) -> Callable[..., Settings]:
    """Settings for this test; keyword arguments override sections, e.g. http={...}."""

    def make(amqp_url: str = AMQP_URL, **sections: dict[str, Any]) -> Settings:
        tree = settings_tree(prefix, amqp_url)
        for section, values in sections.items():
            tree[section] = {**tree.get(section, {}), **values}
        return from_mapping(tree)

    return make


@pytest.fixture(params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str
) -> AsyncIterator[Database]:
    """A migrated, empty store: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "bridge.sqlite3"
        shutil.copyfile(await _migrated_sqlite(), path)
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.open()  # migrated already: open() finds nothing to apply
        yield db
        await db.close()
        return
    async with postgres_database(prefix, template=await _migrated_postgres()) as url:
        db = Database(url)
        await db.open()
        yield db
        await db.close()


# The `database` fixture's stores are copies of one store migrated once per session: the
# migrations took most of a store's set-up (0.7-1 s on PostgreSQL, 0.25 s on SQLite) in
# about 90 tests each. Dropped at the session's end (tests/conftest.py's sessionfinish).
_templates: dict[str, str] = {}


async def _migrated_sqlite() -> str:
    if "sqlite" not in _templates:
        path = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}-")) / "migrated.sqlite3"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.open()
        await db.close()  # the last connection gone: the WAL is folded into the file
        _templates["sqlite"] = str(path)
    return _templates["sqlite"]


async def _migrated_postgres() -> str:
    """A migrated database no one is connected to (a template must have no sessions)."""
    if "postgres" not in _templates:
        name = f"{RUN_PREFIX}-migrated".replace("-", "_")
        connection = await asyncpg.connect(_admin_dsn())
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        db = Database(make_url(POSTGRES_URL).set(database=name).render_as_string(False))
        await db.open()
        await db.close()
        _templates["postgres"] = name
    return _templates["postgres"]


def drop_templates() -> None:
    """Remove the session's migrated stores (at its end)."""
    if "sqlite" in _templates:
        shutil.rmtree(Path(_templates.pop("sqlite")).parent, ignore_errors=True)
    if "postgres" in _templates:

        async def drop(name: str) -> None:
            connection = await asyncpg.connect(_admin_dsn())
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close()

        with contextlib.suppress(Exception):
            asyncio.run(drop(_templates.pop("postgres")))


def _admin_dsn() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)


@contextlib.asynccontextmanager
async def postgres_database(prefix: str, template: str | None = None) -> AsyncIterator[str]:
    """Create a database for one test (empty, or a copy of `template`) and drop it afterwards."""
    admin = make_url(POSTGRES_URL)
    name = prefix.replace("-", "_")
    connection = await asyncpg.connect(_admin_dsn())
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


async def delete_topology(settings: Settings, *extra_delays_s: float) -> None:
    """Remove a test's exchanges and queues from the shared broker, whatever is left."""
    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            delays = {*settings.worker.retry_delays_s, *extra_delays_s}
            await topology.delete(await connection.channel(), settings.amqp, delays)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of the test, as JSON, in a stream (tests/loglines.py parses it); the
    console format afterwards."""
    stream = io.StringIO()
    logs.configure(LogSettings(level="debug", format="json"), stream=stream, cache=False)
    yield stream
    logs.configure(LogSettings(level="info", format="console"), cache=False)
