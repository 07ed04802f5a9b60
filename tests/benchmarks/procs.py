"""Processes: a server or the load generator, each in a process of its own.

A server prints one JSON line when it serves; we wait for that line within a deadline,
never for a fixed time, and stop it with SIGTERM (SIGKILL after a deadline). The load
generator prints "warm" when its warm-up ends and leaves its result in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from tests.benchmarks.config import AMQP_URL, READY_TIMEOUT_S, RESULTS, ROOT, STOP_TIMEOUT_S
from tests.waiting import poll_interval

LOGS = RESULTS / "logs"


@dataclass
class Server:
    """A server process that announced it serves."""

    role: str
    process: asyncio.subprocess.Process
    info: dict[str, Any]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def loop(self) -> str:
        return str(self.info.get("loop", "?"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"


@contextlib.asynccontextmanager
async def server(
    role: str, prefix: str, log_name: str, *extra: str, processes: int = 1
) -> AsyncIterator[Server]:
    """Run `python -m tests.benchmarks.serve <role> <extra>` until the block ends.

    Its log (stderr) goes to bench-results/logs/<log_name>.log. With `processes` > 1 (ours
    only) it gets a metrics directory of its own and counts as serving once /readyz says so.
    """
    log_path = LOGS / f"{log_name}.log"
    log = _open_log(log_path)
    command = ["-m", "tests.benchmarks.serve", role, "--prefix", prefix, "--amqp-url", AMQP_URL]
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics_dir:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir} if processes > 1 else None
        if processes > 1:
            command += ["--processes", str(processes)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command, *extra,
            stdout=asyncio.subprocess.PIPE, stderr=log, cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            info = await _announcement(process, log_path)
            server = Server(role, process, info, log_path)
            if processes > 1:
                await _every_process_ready(server.url)
            yield server
        finally:
            await stop(process)
            log.close()


async def _every_process_ready(url: str, in_a_row: int = 20) -> None:
    """Poll /readyz on fresh connections (each may land on any process) until `in_a_row`
    answers in a row are 200, within the deadline."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with asyncio.timeout(READY_TIMEOUT_S):
            ready = 0
            while ready < in_a_row:
                try:
                    async with session.get(f"{url}/readyz") as response:
                        ready = ready + 1 if response.status == 200 else 0
                except aiohttp.ClientError:
                    ready = 0
                if ready == 0:
                    await poll_interval()  # a starting server, within the deadline


async def _announcement(process: asyncio.subprocess.Process, log_path: Path) -> dict[str, Any]:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            line = await process.stdout.readline()
    except TimeoutError:
        raise RuntimeError(
            f"the server did not serve within {READY_TIMEOUT_S:g} s (is the broker up?); "
            f"its log ends:\n{_tail(log_path, 500)}"
        ) from None
    if not line:
        raise RuntimeError(f"the server exited before serving; its log ends:\n{_tail(log_path)}")
    info: dict[str, Any] = json.loads(line)
    return info


async def stop(process: asyncio.subprocess.Process) -> int:
    """SIGTERM, wait within a deadline, SIGKILL if it did not exit; return its exit code."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                return await process.wait()
        except TimeoutError:
            process.kill()
    return await process.wait()


async def loadgen(config: dict[str, Any], on_warm: Callable[[], None] | None = None) -> Any:
    """Run the load generator in its own process; call `on_warm` when its warm-up ends."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result = Path(tmp) / "result.json"
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.benchmarks.loadgen", json.dumps(config), str(result)),
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        assert process.stdout is not None
        async with asyncio.timeout(config["warmup_s"] + config["duration_s"] + 120):
            async for line in process.stdout:
                if line.strip() == b"warm" and on_warm is not None:
                    on_warm()
            code = await process.wait()
        if code != 0:
            raise RuntimeError(f"the load generator exited with {code}")
        return json.loads(result.read_bytes())


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:]


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")
