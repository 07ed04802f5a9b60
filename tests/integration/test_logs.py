"""One log line per request outcome and per handled event; secrets never appear."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.settings import Settings
from service.store import Database
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests import senders
from tests.integration.conftest import post
from tests.loglines import parse

pytestmark = pytest.mark.integration


async def test_request_outcomes_are_logged_without_secrets(
    log_lines: io.StringIO,
    settings: Settings,
    broker: Broker,
    client: TestClient[Any, Any],
    store: Database,
) -> None:
    registry = Registry()
    handled = asyncio.Event()

    @registry.handler("#")
    async def done(event: CloudEvent, context: Context) -> None:
        handled.set()

    consumer = Consumer(settings, broker, registry, database=store)
    await consumer.start()
    accepted = orjson.loads((await post(client, senders.leanix()))[2])["id"]
    await post(client, senders.leanix(auth=senders.LEANIX_AUTH + "-wrong"))
    await post(client, senders.uipath(secret=senders.ROBOCORP_SECRET))
    await post(
        client,
        senders.bearer_callback("/callbacks/workato", b"{}", token=senders.CALLBACK_TOKEN[:-1]),
    )
    async with asyncio.timeout(10):
        await handled.wait()
    await consumer.stop(5)

    text = log_lines.getvalue()
    for secret in (*senders.ALL_SECRETS, senders.CALLBACK_TOKEN[:-1], "guest:guest"):
        assert secret not in text
    requests = [line for line in parse(log_lines) if line["event"] == "request"]
    assert [r["status"] for r in requests] == [202, 401, 401, 401]
    assert requests[0]["event_id"] == accepted
    assert all(isinstance(r["duration_ms"], float) for r in requests)
    assert all("detail" in r for r in requests[1:])
    handled_lines = [line for line in parse(log_lines) if line["event"] == "event.handled"]
    assert handled_lines[0]["event_id"] == accepted
    assert "duration_ms" in handled_lines[0]
