"""ClusterConnection: each new attempt goes to the next node (pins aio-pika's attempt hook)."""

from __future__ import annotations

import socket

import structlog

from service.bus.broker import connect
from tests.conftest import AMQP_URL


def _dead_url() -> str:
    """A URL on a local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"amqp://guest:PWdead@127.0.0.1:{port}/"


async def test_a_dead_first_node_is_passed_over_for_the_next() -> None:
    with structlog.testing.capture_logs() as logs:
        connection = await connect([_dead_url(), AMQP_URL], retry_s=0.05)
        try:
            assert connection.connected.is_set()
            assert str(connection.url) == AMQP_URL
        finally:
            await connection.close()
    connected = [line for line in logs if line["event"] == "broker.connected"]
    assert connected and connected[-1]["node"].startswith("amqp://guest:***@127.0.0.1:")
    assert "PWdead" not in repr(logs)


async def test_one_url_stays_on_it() -> None:
    connection = await connect([AMQP_URL], retry_s=0.05)
    try:
        assert str(connection.url) == AMQP_URL
    finally:
        await connection.close()
