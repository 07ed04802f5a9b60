"""Several receiver processes on one port (http.processes): all serve, metrics sum across
them, a dead one stops the service, SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.mmap_dict import MmapedDict

from service.settings import Settings
from tests import senders
from tests.conftest import AMQP_URL, delete_topology
from tests.faults.conftest import REPO, queue_depth, wait_for

PROCESSES = 2
EVENTS = 120


@dataclass
class Service:
    """`python -m service receiver` with HTTP_PROCESSES=2, and what its log said."""

    process: asyncio.subprocess.Process
    metrics_dir: Path
    lines: list[dict[str, Any]] = field(default_factory=list)

    def listening(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == "http.listening"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listening()[0]['port']}"

    @property
    def pids(self) -> set[int]:
        return {line["pid"] for line in self.listening()}

    async def read_log(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"text": raw.decode(errors="replace")})

    async def wait_exit(self, timeout_s: float = 30) -> int:
        async with asyncio.timeout(timeout_s):
            return await self.process.wait()


@pytest.fixture
async def service(fault_settings: Settings, tmp_path: Path) -> AsyncIterator[Service]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "HTTP_PROCESSES": str(PROCESSES),
        "AMQP_URL": AMQP_URL,
        "AMQP_EXCHANGE": fault_settings.amqp.exchange,
        "AMQP_QUEUE": fault_settings.amqp.queue,
        "STORE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}",
        "LEANIX_WEBHOOK_AUTHORIZATION": senders.LEANIX_AUTH,
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "receiver", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    service = Service(process, tmp_path / "metrics")
    reading = asyncio.create_task(service.read_log())
    try:
        await wait_for(lambda: len(service.pids) == PROCESSES, what="every process listening")
        await wait_for(lambda: _ready_count(service) == PROCESSES, what="every broker ready")
        yield service
    finally:
        for pid in service.pids:  # the forked ones hold our stderr pipe: first
            _kill_quietly(pid)
        _kill_quietly(process.pid)
        await process.wait()
        reading.cancel()
        await delete_topology(fault_settings)


def _ready_count(service: Service) -> int:
    return sum(1 for line in service.lines if line.get("event") == "broker.ready")


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _accepted_by_pid(metrics_dir: Path) -> dict[int, float]:
    """bridge_requests_total{status="202"} as each process wrote it in its own file."""
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)  # (metric, sample name, labels, help)
            if name == "bridge_requests_total" and labels.get("status") == "202":
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


async def _post_each_on_its_own_connection(url: str, count: int) -> list[int]:
    connector = aiohttp.TCPConnector(force_close=True)  # a new connection, so any process
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> int:
            request = senders.leanix(
                orjson.dumps({"id": f"proc-{n}", "type": "FactSheetUpdatedEvent"})
            )
            async with session.post(
                url + request.path, data=request.body, headers=request.headers
            ) as r:
                return r.status

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _scrape_total(url: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    prefix = 'bridge_requests_total{source="leanix",status="202"}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


async def test_every_process_serves_and_the_metrics_sum_across_them(
    service: Service, fault_settings: Settings
) -> None:
    statuses = await _post_each_on_its_own_connection(service.url, EVENTS)
    assert statuses == [202] * EVENTS
    assert await queue_depth(fault_settings) == EVENTS  # each 202: confirmed, in the queue
    by_pid = _accepted_by_pid(service.metrics_dir)
    assert set(by_pid) == service.pids and all(n > 0 for n in by_pid.values()), by_pid
    assert sum(by_pid.values()) == EVENTS
    for _ in range(4):  # whichever process answers the scrape, it counts them all
        assert await _scrape_total(service.url) == EVENTS


async def test_a_receiver_that_dies_stops_the_service(service: Service) -> None:
    first = service.process.pid
    (other,) = service.pids - {first}
    os.kill(other, signal.SIGKILL)
    assert await service.wait_exit() == 1
    died = [line for line in service.lines if line.get("event") == "receiver.process_died"]
    assert died and died[0]["pid"] == other


async def test_sigterm_stops_every_process(service: Service) -> None:
    others = service.pids - {service.process.pid}
    service.process.send_signal(signal.SIGTERM)
    assert await service.wait_exit() == 0
    for pid in others:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(line.get("event") == "receiver.process_died" for line in service.lines)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


async def test_no_receiver_outlives_the_first_process(service: Service) -> None:
    """Even a SIGKILL of the first process (no chance to stop the others) leaves no
    orphan serving on the port."""
    others = service.pids - {service.process.pid}
    service.process.kill()
    await service.process.wait()
    await wait_for(lambda: all(_gone(pid) for pid in others), what="the forked receivers gone")
