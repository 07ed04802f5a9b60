"""The ledger tests' fleet: `python -m service worker` processes over the real RabbitMQ and
a real PostgreSQL database of the test's own, with tests/hostile/ledger_handlers.py loaded.

The workers reach the store through a TCP proxy the test can cut (a store outage); the
test reads the store directly. Every worker's JSON log goes to a file of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import orjson
import pytest
from sqlalchemy.engine import make_url

from service.bus import topology
from service.settings import Settings, from_mapping
from tests.conftest import AMQP_URL, delete_topology, postgres_database, settings_tree
from tests.tcpproxy import TcpProxy

REPO = Path(__file__).parents[2]
DELAYS_S = (0.5, 1.0, 2.0, 4.0)


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def logged(self, event: str) -> list[dict[str, object]]:
        """The worker's log lines whose `event` is `event`."""
        text = self.log.read_text() if self.log.exists() else ""
        lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("event") == event]


@dataclass
class Fleet:
    settings: Settings
    dsn: str  # the store, directly (asyncpg form)
    worker_store_url: str  # the store through the proxy (SQLAlchemy form)
    proxy: TcpProxy
    directory: Path
    workers: list[Worker] = field(default_factory=list)

    async def start(
        self, handlers: str, env: dict[str, str] | None = None, **worker: object
    ) -> Worker:
        """A worker process running the ledger handlers named in `handlers` (with `env`
        for them), with `worker` settings."""
        index = len(self.workers)
        config = self.directory / f"worker-{index}.toml"
        values = {"retry_delays_s": list(DELAYS_S), **worker}
        config.write_text("[worker]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
        log = self.directory / f"worker-{index}.log"
        env = {
            **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
            "SERVICE_CONFIG": str(config), "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
            "AMQP_URL": AMQP_URL, "AMQP_EXCHANGE": self.settings.amqp.exchange,
            "AMQP_QUEUE": self.settings.amqp.queue, "STORE_URL": self.worker_store_url,
            "HANDLER_MODULES": "tests.hostile.ledger_handlers", "LEDGER_HANDLERS": handlers,
            "LEDGER_DIR": str(self.directory), "LEDGER_VENDOR_DSN": self.dsn,
            "LOG_FORMAT": "json", **(env or {}),
        }  # fmt: skip
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "service", "worker", cwd=REPO, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=out,
            )  # fmt: skip
        self.workers.append(Worker(process, log))
        return self.workers[-1]

    async def kill(self, worker: Worker) -> float:
        """SIGKILL `worker`; when it died (time.time())."""
        worker.process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await worker.process.wait()
        return time.time()

    async def stop_all(self) -> None:
        """SIGTERM every live worker: each finishes and settles what it holds, then exits."""
        live = [w for w in self.workers if w.process.returncode is None]
        for worker in live:
            worker.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            codes = [await w.process.wait() for w in live]
        assert codes == [0] * len(live)

    async def consuming(self, worker: Worker) -> bool:
        return bool(worker.logged("worker.consuming"))

    async def publish(self, ids: Iterable[str], event_type: str = "ledger.test.event") -> None:
        """Publish one persistent CloudEvent per id, each confirmed by the broker."""
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.settings.amqp.exchange)
            await asyncio.gather(
                *(exchange.publish(_message(i, event_type), event_type) for i in ids)
            )

    async def depths(self) -> dict[str, int]:
        """Ready messages in the work queue, the dead letters and every retry queue."""
        amqp = self.settings.amqp
        names = [amqp.queue, amqp.dead_letter_queue]
        names += [topology.retry_queue(amqp, d) for d in DELAYS_S]
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            found = {}
            for name in names:
                queue = await channel.declare_queue(name, passive=True)
                found[name] = queue.declaration_result.message_count or 0
        return found

    async def execute(self, sql: str) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()


def _message(event_id: str, event_type: str) -> aio_pika.Message:
    body = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "ledger-test", "type": event_type,
         "time": "2026-01-01T00:00:00Z", "data": {"n": event_id}}
    )  # fmt: skip
    return aio_pika.Message(
        body, message_id=event_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
    )


def _toml(value: object) -> str:
    return orjson.dumps(value).decode()


@pytest.fixture
async def fleet(prefix: str, tmp_path: Path) -> AsyncIterator[Fleet]:
    """A fleet with its own exchange and queues (declared up front) and its own database."""
    settings = from_mapping(settings_tree(prefix))
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await topology.declare(await connection.channel(), settings.amqp)
    async with postgres_database(prefix) as url:
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        await proxy.start()
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        through = parsed.set(host="127.0.0.1", port=proxy.port)
        fleet = Fleet(settings, dsn, through.render_as_string(hide_password=False), proxy, tmp_path)
        try:
            yield fleet
        finally:
            for worker in fleet.workers:
                if worker.process.returncode is None:
                    worker.process.kill()
                    await worker.process.wait()
            await proxy.close()
            await delete_topology(settings, *DELAYS_S)
