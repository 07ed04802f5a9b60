"""The receiver served for real, and raw sockets to attack it with.

`serve(settings)` runs the receiver app in this process exactly as the service does
(service/receiver/server.py: aiohttp behind the connection guard, on 127.0.0.1 and a
free port) with a real RabbitMQ. `ReceiverProcess` runs `python -m service receiver` as
a process of its own, for what must be measured from outside (its memory). The helpers
below speak HTTP/1.1 byte for byte, so an attack can stop anywhere in a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
from aiohttp import web

from service.bus.broker import Broker
from service.receiver import server
from service.settings import Settings
from service.web import create_app
from tests.conftest import AMQP_URL, delete_topology
from tests.waiting import eventually

REPO = Path(__file__).parents[2]
MiB = 1024 * 1024


@dataclass
class Served:
    """A receiver listening on 127.0.0.1:`port`, and its connection guard."""

    settings: Settings
    port: int
    connections: server.Connections
    app: web.Application


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Served]:
    """The receiver app behind the service's own HTTP server, with a real broker."""
    broker = Broker(settings.amqp)
    await broker.start()
    try:
        await broker.wait_ready(15)
        app = create_app(settings, broker)
        runner, site = await server.start(settings.http, app)
        try:
            yield Served(settings, site.port, site.connections, app)
        finally:
            await runner.cleanup()
    finally:
        await broker.close()
        await delete_topology(settings)


async def queue_depth(settings: Settings) -> int:
    """Messages in the worker's queue: what the receiver published."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp.queue, passive=True)
        return queue.declaration_result.message_count or 0


def request_head(
    path: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], length: int | None = None
) -> bytes:
    """The head of an HTTP/1.1 POST; Content-Length `length` unless None."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in pairs]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_answer(reader: asyncio.StreamReader, timeout_s: float = 10.0) -> Answer:
    """One HTTP/1.1 answer (with a Content-Length), skipping any 100 Continue."""
    async with asyncio.timeout(timeout_s):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            if status != 100:
                break
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers, body)


async def closed_by_server(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    """True once the server has closed the connection (EOF or reset) within `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def rss_mb(pid: int) -> float:
    """The resident memory of process `pid` (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@dataclass
class ReceiverProcess:
    """`python -m service receiver` with its configuration in the environment."""

    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def run(
        cls, settings: Settings, env: Mapping[str, str]
    ) -> AsyncIterator[ReceiverProcess]:
        environ = {
            **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0", "AMQP_URL": AMQP_URL,
            "AMQP_EXCHANGE": settings.amqp.exchange, "AMQP_QUEUE": settings.amqp.queue,
            "LOG_FORMAT": "json", **env,
        }  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "receiver", cwd=REPO, env=environ,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        receiver = cls(process)
        reading = asyncio.create_task(receiver._read_log())
        try:
            await eventually(receiver._events("broker.ready"), 30, "the receiver's broker ready")
            await eventually(receiver._events("http.listening"), 30, "the receiver listening")
            yield receiver
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            reading.cancel()
            await delete_topology(settings)

    @property
    def port(self) -> int:
        return int(self._events("http.listening")()[0]["port"])

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def _events(self, name: str) -> Any:
        return lambda: [line for line in self.lines if line.get("event") == name]

    async def _read_log(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"text": raw.decode(errors="replace")})
