"""RabbitMQ restarted in the middle of a stream of signed webhooks: every 202 is handled."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from service.cloudevent import CloudEvent
from service.runtime import serve
from service.settings import Settings, from_mapping
from service.simulators.lab import free_port
from service.worker.registry import Context, Registry
from tests import senders
from tests.conftest import delete_topology, settings_tree
from tests.faults.conftest import wait_for

pytestmark = pytest.mark.integration

SEND_INTERVAL_S = 0.01  # ~100 events/s at most
can_restart = shutil.which("rabbitmqctl") is not None and os.geteuid() == 0


async def rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    async with asyncio.timeout(60):
        assert await process.wait() == 0, f"rabbitmqctl {' '.join(args)} failed"


@pytest.fixture
async def service(prefix: str, tmp_path: Path) -> AsyncIterator[tuple[Settings, set[str]]]:
    tree = settings_tree(prefix)
    tree["http"].update(port=free_port(), publish_timeout_s=1.0)
    tree["amqp"]["connect_retry_s"] = 0.3
    tree["store"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"}
    tree["worker"] = {"retry_delays_s": [0.3, 0.6]}
    settings = from_mapping(tree)
    handled: set[str] = set()
    registry = Registry()

    @registry.handler("#")
    async def record(event: CloudEvent, context: Context) -> None:
        handled.add(event.id)

    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, "all", registry, stop))
    url = f"http://127.0.0.1:{settings.http.port}"
    await wait_for(lambda: _ready(url), what="the service is ready")
    yield settings, handled
    stop.set()
    await task
    await delete_topology(settings)


async def _ready(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


@pytest.mark.skipif(not can_restart, reason="restarting RabbitMQ needs rabbitmqctl as root")
async def test_every_accepted_event_is_handled_across_a_broker_restart(
    service: tuple[Settings, set[str]],
) -> None:
    settings, handled = service
    url = f"http://127.0.0.1:{settings.http.port}/webhooks/leanix"
    accepted: list[str] = []
    refused: list[int] = []
    done = asyncio.Event()

    async def stream() -> None:
        template = orjson.loads(senders.fixture("leanix-factsheet-created.json"))
        async with aiohttp.ClientSession() as session:
            n = 0
            while not done.is_set():
                n += 1
                request = senders.leanix(orjson.dumps({**template, "id": 1_000_000 + n}))
                async with session.post(url, data=request.body, headers=request.headers) as answer:
                    if answer.status == 202:
                        accepted.append((await answer.json())["id"])
                    else:
                        assert answer.status == 503, await answer.text()
                        refused.append(answer.status)
                await asyncio.sleep(SEND_INTERVAL_S)  # pacing of the sender, not a wait

    sender = asyncio.create_task(stream())
    await wait_for(lambda: len(accepted) >= 20, what="a first batch accepted")
    await rabbitmqctl("stop_app")
    await wait_for(lambda: len(refused) >= 5, what="503s while the broker is down")
    await rabbitmqctl("start_app")
    await rabbitmqctl("await_startup")
    before = len(accepted)
    await wait_for(lambda: len(accepted) >= before + 20, timeout_s=60, what="accepting again")
    done.set()
    await sender

    await wait_for(lambda: set(accepted) <= handled, timeout_s=60, what="every 202 handled")
    assert refused, "the outage was not observed"
    assert len(set(accepted)) == len(accepted)
