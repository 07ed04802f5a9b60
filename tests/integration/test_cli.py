"""`python -m service`: serves in the foreground, stops cleanly on SIGTERM, refuses bad config."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from service.simulators.lab import free_port
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from tests import senders
from tests.conftest import AMQP_URL
from tests.integration.conftest import Inspector
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration


def service_env(prefix: str, port: int, **extra: str) -> dict[str, str]:
    store = Path(tempfile.gettempdir()) / f"{prefix}.sqlite3"
    inherited = {k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"}
    return {
        **inherited,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "AMQP_URL": AMQP_URL,
        "AMQP_EXCHANGE": f"{prefix}.events",
        "AMQP_QUEUE": f"{prefix}.worker",
        "LEANIX_WEBHOOK_AUTHORIZATION": senders.LEANIX_AUTH,
        "LOG_FORMAT": "json",
        "STORE_URL": f"sqlite+aiosqlite:///{store}",
        **extra,
    }


async def wait_ready(url: str, process: asyncio.subprocess.Process, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s), aiohttp.ClientSession() as session:
        while True:
            assert process.returncode is None, "the service exited during start-up"
            try:
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await poll_interval()


@pytest.fixture
async def service(
    prefix: str, inspector: Inspector
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        env=service_env(prefix, port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        yield url, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serves_receiver_and_worker_and_stops_on_sigterm(
    service: tuple[str, asyncio.subprocess.Process], inspector: Inspector
) -> None:
    url, process = service
    request = senders.leanix()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + request.path, data=request.body, headers=request.headers) as response,
    ):
        assert response.status == 202
        event_id = (await response.json())["id"]
    await inspector.wait_count(inspector.settings.amqp.queue, 0)  # the worker consumed it

    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 0
    lines = [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    events = [line["event"] for line in lines]
    assert "service.stopped" in events
    unhandled = [line for line in lines if line["event"] == "event.unhandled"]
    assert unhandled[0]["event_id"] == event_id
    assert senders.LEANIX_AUTH.encode() not in stderr


async def test_an_invalid_setting_stops_start_up_naming_the_key(prefix: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        env=service_env(prefix, free_port(), HTTP_PORT="not-a-port"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"http.port" in stderr
    assert b"HTTP_PORT" in stderr


async def test_the_worker_alone_serves_probes_and_metrics(
    prefix: str, inspector: Inspector
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "worker",
        env=service_env(prefix, port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
            text = await response.text()
        assert 'bridge_runs_in_flight{vendor="uipath"} 0.0' in text
        async with aiohttp.ClientSession() as session:
            request = senders.leanix()
            async with session.post(url + request.path, data=request.body) as response:
                assert response.status == 404  # no webhook endpoints on a worker
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_pull_without_a_subscription_stops_start_up_naming_the_key(prefix: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "pull",
        env=service_env(prefix, free_port(), LEANIX_PULL_SUBSCRIPTION_ID=""),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"leanix_pull.subscription_id" in stderr


async def test_all_mode_pulls_a_configured_subscription_and_the_worker_takes_its_events(
    prefix: str, inspector: Inspector
) -> None:
    sim = LeanixSimulator()
    async with sim.serve() as sim_url:
        subscription = sim.pull.subscribe()
        sim.pull_event(sim.add_fact_sheet())
        port = free_port()
        env = service_env(
            prefix, port, LEANIX_BASE_URL=sim_url, LEANIX_API_TOKEN=DEFAULT_API_TOKEN,
            LEANIX_PULL_SUBSCRIPTION_ID=subscription,
        )  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await wait_ready(f"http://127.0.0.1:{port}", process)
            async with asyncio.timeout(20):
                while sim.pull.pending(subscription):
                    await poll_interval()
            await inspector.wait_count(inspector.settings.amqp.queue, 0)
        finally:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                _, stderr = await process.communicate()
    assert process.returncode == 0
    lines = [orjson.loads(line) for line in stderr.splitlines() if line.startswith(b"{")]
    events = [line["event"] for line in lines]
    assert "pull.batch" in events and "event.unhandled" in events
    assert DEFAULT_API_TOKEN.encode() not in stderr
