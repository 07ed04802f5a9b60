"""The admin API with its PostgreSQL store unreachable: 503 + Retry-After naming the store,
never a 500 saying "the event was not accepted"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from service.admin import auth
from service.bus.broker import Broker
from service.settings import Settings
from service.store import Database
from service.web import create_app
from tests.conftest import POSTGRES_URL, postgres_database
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.integration


@dataclass
class Outage:
    client: TestClient[Any, Any]
    proxy: TcpProxy
    headers: dict[str, str]
    settings: Settings
    database: Database


@pytest.fixture
async def outage(prefix: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Outage]:
    """The admin API over a fresh PostgreSQL database reached through a breakable proxy."""
    async with postgres_database(prefix) as url:
        proxy = TcpProxy("127.0.0.1", make_url(POSTGRES_URL).port or 5432)
        await proxy.start()
        through = make_url(url).set(host="127.0.0.1", port=proxy.port)
        settings = make_settings(store={"url": through.render_as_string(hide_password=False)})
        database = Database(settings.store.url)
        await database.open()
        _, key = await database.keys.create("ops", ["events:read", "status:read"], [])
        app = create_app(settings, Broker(settings.amqp), database)  # the broker is not needed
        try:
            async with TestClient(TestServer(app)) as client:
                headers = {"Authorization": f"Bearer {key}"}
                yield Outage(client, proxy, headers, settings, database)
        finally:
            await database.close()
            await proxy.close()


async def call(outage: Outage, path: str, **headers: str) -> tuple[int, Any, Any]:
    async with outage.client.get(path, headers=headers) as response:
        return response.status, response.headers, orjson.loads(await response.read())


async def test_a_store_outage_answers_503_with_retry_after_naming_the_store(
    outage: Outage,
) -> None:
    assert (await call(outage, "/api/v1/events", **outage.headers))[0] == 200
    outage.proxy.cut()  # PostgreSQL unreachable: connections dropped, new ones refused
    for path in ("/api/v1/events", "/api/v1/status", "/api/v1/runs"):
        status, headers, body = await call(outage, path, **outage.headers)
        assert status == 503, body
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] == str(outage.settings.http.retry_after_s)
        assert body["title"] == "Store unavailable"
        # The key could not be checked, so the caller is not told what the store answered.
        assert body["detail"] == "the store (PostgreSQL) is unavailable; retry later"
    outage.proxy.restore()
    assert (await call(outage, "/api/v1/events", **outage.headers))[0] == 200


async def test_a_store_lost_after_the_key_was_checked_answers_503_with_the_reason(
    outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = outage.database.keys
    verify = keys.verify

    async def verify_then_lose_the_store(presented: str) -> Any:
        key = await verify(presented)
        outage.proxy.cut()
        return key

    monkeypatch.setattr(keys, "verify", verify_then_lose_the_store)
    status, headers, body = await call(outage, "/api/v1/status", **outage.headers)
    assert status == 503 and headers["Retry-After"]
    assert body["detail"].startswith("the store (PostgreSQL) is unavailable: ")
    assert body["detail"].endswith("; retry later")
    assert "not accepted" not in body["detail"]


async def test_a_store_that_hangs_answers_503_within_the_bound(
    outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "VERIFY_TIMEOUT_S", 1.0)
    await call(outage, "/api/v1/events", **outage.headers)  # a pooled connection exists
    outage.proxy.pause()  # PostgreSQL takes the bytes and never answers
    status, headers, body = await call(outage, "/api/v1/events", **outage.headers)
    assert status == 503 and headers["Retry-After"]
    assert body["detail"].startswith("the store (PostgreSQL) is unavailable")
