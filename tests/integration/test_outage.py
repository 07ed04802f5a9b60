"""Broker down or hanging: 503 with Retry-After, never a 202 for an unconfirmed event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.bus.broker import Broker
from service.settings import Settings
from service.web import create_app
from tests import senders
from tests.assertions import assert_problem
from tests.integration.conftest import Inspector, post
from tests.tcpproxy import TcpProxy
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration


@pytest.fixture
async def proxied(
    make_settings: Callable[..., Settings], proxy: TcpProxy, inspector: Inspector, publisher: str
) -> AsyncIterator[tuple[TestClient[Any, Any], Broker, Settings]]:
    """The receiver, talking to RabbitMQ through a proxy the test can break."""
    settings = make_settings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        amqp={"publisher": publisher},
        http={"publish_timeout_s": 0.5, "retry_after_s": 7},
    )
    broker = Broker(settings.amqp)
    await broker.start()
    await broker.wait_ready(15)
    async with TestClient(TestServer(create_app(settings, broker))) as client:
        yield client, broker, settings
    await broker.close()


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await poll_interval()


async def test_broker_down_answers_503_at_once_and_recovers(
    proxied: tuple[TestClient[Any, Any], Broker, Settings], proxy: TcpProxy, inspector: Inspector
) -> None:
    client, broker, settings = proxied
    proxy.cut()
    await wait_until(lambda: not broker.ready)

    status, content_type, body, headers = await post(client, senders.leanix())
    assert_problem(status, content_type, body, 503)
    assert headers["Retry-After"] == "7"
    async with client.get("/readyz") as response:
        assert response.status == 503
    assert await inspector.count(settings.amqp.queue) == 0

    proxy.restore()
    await wait_until(lambda: broker.ready)
    status, _, body, _ = await post(client, senders.leanix())
    assert status == 202, body
    await inspector.wait_count(settings.amqp.queue, 1)


async def test_no_confirm_within_the_timeout_answers_503(
    proxied: tuple[TestClient[Any, Any], Broker, Settings], proxy: TcpProxy, inspector: Inspector
) -> None:
    client, _, settings = proxied
    proxy.pause()  # the connection looks alive, but nothing gets through: no confirm
    status, content_type, body, headers = await post(client, senders.uipath())
    doc = assert_problem(status, content_type, body, 503)
    assert "did not confirm" in doc["detail"]
    assert headers["Retry-After"] == "7"
    proxy.cut()  # the held publish is dropped with the connection: never reached the broker
    assert await inspector.count(settings.amqp.queue) == 0


async def test_receiver_starts_without_a_broker_and_becomes_ready(
    make_settings: Callable[..., Settings], proxy: TcpProxy, inspector: Inspector, publisher: str
) -> None:
    proxy.cut()
    settings = make_settings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/", amqp={"publisher": publisher}
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        async with client.get("/readyz") as response:
            assert response.status == 503
        status, content_type, body, _ = await post(client, senders.leanix())
        assert_problem(status, content_type, body, 503)
        proxy.restore()
        async with asyncio.timeout(15):
            while (await client.get("/readyz")).status != 200:
                await poll_interval()
        status, _, body, _ = await post(client, senders.leanix())
        assert status == 202, body
