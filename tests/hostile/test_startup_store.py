"""Start-up with the store down: waited for out loud, never a silent hang.

Each mode starts with nothing listening on the store's port, then a TCP proxy in front of
the real PostgreSQL starts listening there; the process must say what it awaits, and be
ready soon after the store came back. The time to ready is printed (run with -s)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service.settings import from_mapping
from service.simulators.lab import free_port
from tests.conftest import POSTGRES_URL, delete_topology, postgres_database, settings_tree
from tests.hostile.startup_process import running, service_env
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration

READY_WITHIN_S = 5.0  # of the store coming back, with the default store.connect_retry_s


@pytest.fixture
async def store_url(prefix: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database of this test's own."""
    async with postgres_database(prefix) as url:
        yield url
    await delete_topology(from_mapping(settings_tree(prefix)))


def through(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port`."""
    parsed = make_url(url).set(host="127.0.0.1", port=port)
    return parsed.render_as_string(hide_password=False)


@pytest.mark.parametrize("mode", ["worker", "all"])
async def test_a_worker_waits_for_the_store_and_is_ready_soon_after_it_comes(
    mode: str, prefix: str, store_url: str
) -> None:
    port = free_port()  # nothing listens there yet: the store is down
    env = service_env(prefix, free_port(), through(store_url, port))
    async with running(mode, env) as service:
        waiting = await service.wait_event("startup.waiting")
        assert waiting["awaiting"] == "the store (PostgreSQL)"
        assert "refused" in waiting["error"].lower()
        assert ":***@" in waiting["url"]
        status, _, body = await service.answer("/readyz")
        assert status == 503
        assert "waiting for the store (PostgreSQL)" in body["detail"]
        if mode == "all":  # the admin API says so too
            admin = await service.get("/api/v1/status")
            assert admin is not None and admin[0] == 503
            assert "the store (PostgreSQL)" in admin[2]["detail"]
            assert admin[1]["Retry-After"]
        assert not service.events("service.started")

        proxy = TcpProxy("127.0.0.1", make_url(POSTGRES_URL).port or 5432)
        await proxy.start(port)  # the store is back
        came_back = time.perf_counter()
        try:
            ready_at = await service.wait_status("/readyz", 200, timeout_s=15)
            took = ready_at - came_back
            print(f"\n{mode}: ready {took:.2f} s after the store came back")
            assert took < READY_WITHIN_S
            await service.wait_event("service.started")
            assert await service.stop() == 0
        finally:
            await proxy.close()


async def test_the_receiver_serves_while_the_store_is_down_and_admin_comes_with_it(
    prefix: str, store_url: str
) -> None:
    port = free_port()
    env = service_env(prefix, free_port(), through(store_url, port))
    async with running("receiver", env) as service:
        waiting = await service.wait_event("startup.waiting")
        assert waiting["awaiting"] == "the store (PostgreSQL)"
        await service.wait_status("/readyz", 200)  # ingest needs only the broker
        answer = await service.get("/api/v1/events")
        assert answer is not None
        status, headers, body = answer
        assert status == 503 and headers["Retry-After"]
        assert body["detail"].startswith("waiting for the store (PostgreSQL)")

        proxy = TcpProxy("127.0.0.1", make_url(POSTGRES_URL).port or 5432)
        await proxy.start(port)
        came_back = time.perf_counter()
        try:
            answered_at = await service.wait_status("/api/v1/events", 401, timeout_s=15)
            took = answered_at - came_back
            print(f"\nreceiver: admin API answering {took:.2f} s after the store came back")
            assert took < READY_WITHIN_S
            assert await service.stop() == 0
        finally:
            await proxy.close()


async def test_stopped_while_waiting_it_exits_at_once_and_never_shows_the_password(
    prefix: str, tmp_path: Path
) -> None:
    secret = "PWa%23PWb%2FPWc%3FPWd"  # "PWa#PWb/PWc?PWd", percent-encoded
    url = f"postgresql+asyncpg://bridge:{secret}@127.0.0.1:{free_port()}/bridge"
    config = tmp_path / "service.toml"
    config.write_text("[store]\nconnect_retry_s = 0.2\n")  # the second wait soon, not in 2 s
    env = service_env(prefix, free_port(), url, SERVICE_CONFIG=str(config))
    async with running("worker", env) as service:
        await service.wait_event("startup.waiting", count=2)
        assert await service.stop(timeout_s=10) == 0
    assert b"PW" not in service.output
    assert not service.events("service.started")
