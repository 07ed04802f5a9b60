"""`python -m service` as a subprocess for the start-up tests: its JSON log lines, its
probes, and its exit, each waited for with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import AMQP_URL
from tests.waiting import poll_interval


def service_env(prefix: str, port: int, store_url: str, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"}
    return {
        **inherited,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "AMQP_URL": AMQP_URL,
        "AMQP_EXCHANGE": f"{prefix}.events",
        "AMQP_QUEUE": f"{prefix}.worker",
        "STORE_URL": store_url,
        "LOG_FORMAT": "json",
        **extra,
    }


@dataclass
class Service:
    """A running `python -m service MODE`; its output is read as it comes."""

    process: asyncio.subprocess.Process
    url: str
    output: bytearray = field(default_factory=bytearray)
    lines: list[dict[str, Any]] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    def follow(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            self._readers.append(asyncio.create_task(self._read(stream)))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.output.extend(line)
            if line.startswith(b"{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    self.lines.append(orjson.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    async def wait_event(self, name: str, count: int = 1, timeout_s: float = 20) -> dict[str, Any]:
        """The `count`-th log line of `event` `name`; fails if the process exits first."""
        async with asyncio.timeout(timeout_s):
            while len(self.events(name)) < count:
                assert self.process.returncode is None, f"exited: {self.output.decode()[-2000:]}"
                await poll_interval()
        return self.events(name)[count - 1]

    async def get(self, path: str, **headers: str) -> tuple[int, dict[str, Any], Any] | None:
        """(status, headers, JSON body) of GET `path`, or None while nothing listens."""
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.url + path, headers=headers) as response,
            ):
                return response.status, dict(response.headers), orjson.loads(await response.read())
        except aiohttp.ClientConnectionError:
            return None

    async def answer(self, path: str, timeout_s: float = 20) -> tuple[int, dict[str, Any], Any]:
        """The first answer to GET `path` once the process listens."""
        async with asyncio.timeout(timeout_s):
            while (answer := await self.get(path)) is None:
                assert self.process.returncode is None, f"exited: {self.output.decode()[-2000:]}"
                await poll_interval()
        return answer

    async def wait_status(self, path: str, status: int, timeout_s: float = 20) -> float:
        """Poll GET `path` until it answers `status`; the moment it did (perf_counter)."""
        async with asyncio.timeout(timeout_s):
            while (answer := await self.get(path)) is None or answer[0] != status:
                assert self.process.returncode is None, f"exited: {self.output.decode()[-2000:]}"
                await poll_interval()
        return time.perf_counter()

    async def exit_code(self, timeout_s: float = 30) -> int:
        async with asyncio.timeout(timeout_s):
            code = await self.process.wait()
            for reader in self._readers:
                await reader
        return code

    async def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return await self.exit_code(timeout_s)


@contextlib.asynccontextmanager
async def running(
    mode: str, env: dict[str, str], cwd: Path | None = None
) -> AsyncIterator[Service]:
    """Start `python -m service MODE`; killed at the end if still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", mode, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    service = Service(process, f"http://127.0.0.1:{env['HTTP_PORT']}")
    service.follow()
    try:
        yield service
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for reader in service._readers:
            reader.cancel()
