"""Fixtures shared by every tier. Each test gets its own exchange and queue names."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import secrets
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
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'bridge.sqlite3'}")
        await db.open()
        yield db
        await db.close()
        return
    async with postgres_database(prefix) as url:
        db = Database(url)
        await db.open()
        yield db
        await db.close()


@contextlib.asynccontextmanager
async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """Create a database for one test and drop it afterwards."""
    admin = make_url(POSTGRES_URL)
    name = prefix.replace("-", "_")
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
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
