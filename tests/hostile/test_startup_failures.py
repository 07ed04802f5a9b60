"""Start-up failures that waiting cannot cure end the process with the reason, at once.

Before, a failure within milliseconds of Broker.start() (the store refusing, the port
taken) left aio-pika's reconnect task running past the cancelled connect: the process
never listened, never exited and logged nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service.bus.broker import Broker
from service.settings import Settings, from_mapping
from service.simulators.lab import free_port
from tests.conftest import POSTGRES_URL, delete_topology, settings_tree
from tests.hostile.startup_process import running, service_env
from tests.tcpproxy import TcpProxy
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def cleanup(prefix: str) -> AsyncIterator[None]:
    yield
    await delete_topology(from_mapping(settings_tree(prefix)))


@pytest.mark.parametrize("mode", ["receiver", "worker", "all"])
async def test_a_port_already_taken_ends_start_up_with_the_reason(
    mode: str, prefix: str, tmp_path: Path, cleanup: None
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        store = f"sqlite+aiosqlite:///{tmp_path}/store.sqlite3"
        async with running(mode, service_env(prefix, port, store)) as service:
            assert await service.exit_code(timeout_s=30) == 1
    failed = service.events("startup.failed")
    assert failed and "address already in use" in failed[0]["error"].lower()
    assert b"stopped by an error" in service.output


@pytest.mark.parametrize("mode", ["receiver", "worker"])
async def test_a_store_that_refuses_for_good_ends_start_up_naming_it(
    mode: str, prefix: str, cleanup: None
) -> None:
    missing = make_url(POSTGRES_URL).set(database=f"{prefix.replace('-', '_')}_missing")
    url = missing.render_as_string(hide_password=False)
    async with running(mode, service_env(prefix, free_port(), url)) as service:
        assert await service.exit_code(timeout_s=30) == 1
    assert b"does not exist" in service.output
    assert not service.events("startup.waiting")  # waiting would not cure it


def factories() -> list[asyncio.Task[object]]:
    """aio-pika's reconnect tasks still alive in this loop."""
    return [t for t in asyncio.all_tasks() if "connection_factory" in repr(t.get_coro())]


async def test_a_broker_closed_while_connecting_leaves_no_reconnect_task(
    make_settings: Callable[..., Settings],
) -> None:
    proxy = TcpProxy()
    await proxy.start()
    proxy.pause()  # the broker takes the connection and says nothing: connect hangs
    settings = make_settings(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    broker = Broker(settings.amqp)
    try:
        await broker.start()
        await eventually(lambda: proxy.accepted, timeout_s=10, what="the broker connects")
        await broker.close()
        await eventually(lambda: not factories(), timeout_s=5, what="no reconnect task left")
    finally:
        await proxy.close()
