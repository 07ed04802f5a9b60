"""Probes and metrics: what an operator scrapes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests import senders
from tests.integration.conftest import Inspector, post

pytestmark = pytest.mark.integration


async def scrape(client: TestClient[Any, Any]) -> str:
    async with client.get("/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return await response.text()


def value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no metric line starts with {prefix!r}"
    return float(lines[0].rsplit(" ", 1)[1])


async def test_metrics_count_requests_confirms_and_queue_depth(
    client: TestClient[Any, Any], inspector: Inspector
) -> None:
    before = await scrape(client)
    accepted_before = _maybe(before, 'bridge_requests_total{source="leanix",status="202"}')
    refused_before = _maybe(before, 'bridge_requests_total{source="uipath",status="401"}')
    confirms_before = _maybe(before, "bridge_publish_confirm_seconds_count")

    assert (await post(client, senders.leanix()))[0] == 202
    assert (await post(client, senders.uipath(secret="wrong")))[0] == 401
    text = await scrape(client)

    assert value(text, 'bridge_requests_total{source="leanix",status="202"}') == accepted_before + 1
    assert value(text, 'bridge_requests_total{source="uipath",status="401"}') == refused_before + 1
    assert value(text, "bridge_publish_confirm_seconds_count") == confirms_before + 1
    queue = inspector.settings.amqp.queue
    assert value(text, f'bridge_queue_depth{{queue="{queue}"}}') == 1


def _maybe(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


async def test_probes_are_not_counted_as_requests(client: TestClient[Any, Any]) -> None:
    before = await scrape(client)
    for path in ("/healthz", "/readyz", "/metrics"):
        async with client.get(path) as response:
            assert response.status == 200
    after = await scrape(client)
    counted = 'bridge_requests_total{source="other",status="200"}'
    assert _maybe(after, counted) == _maybe(before, counted)
