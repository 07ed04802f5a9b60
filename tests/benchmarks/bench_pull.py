"""Pull: LeanIX PULL delivery, events/s pulled and end-to-end latency.

Three processes: the LeanIX simulator (`python -m tests.benchmarks.bench_pull sim`, with
one PULL subscription), the service's puller (`python -m service pull`, its defaults:
100-event publish batches, 10 s long poll), and this one, which watches the exchange.

    backlog  N events already waiting (a puller back after an outage): events/s from the
             first to the last event on the bus
    steady   events arriving at a steady rate: latency from the event's createdAt in
             LeanIX to its CloudEvent on the bus (the long poll answers at once)

No target in the issue; numbers to watch. The simulator's batches are bounded by its
maxBatchSize (512 KiB, LeanIX's default), about 150 fact sheet events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aio_pika
import aiohttp
from aiohttp import web

from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from tests.benchmarks import bus, procs, stats
from tests.benchmarks.config import AMQP_URL, READY_TIMEOUT_S, ROOT, Plan, new_prefix
from tests.benchmarks.report import Row, Section
from tests.waiting import poll_interval


async def run(plan: Plan) -> Section:
    prefix = new_prefix("pull")
    backlog, steady_rate, steady_s = (2000, 200.0, 5.0) if plan.quick else (20_000, 500.0, 20.0)
    try:
        async with contextlib.AsyncExitStack() as stack:
            sim_url, subscription = await stack.enter_async_context(_simulator())
            seen = await stack.enter_async_context(_watch(prefix))
            await stack.enter_async_context(_puller(prefix, sim_url, subscription))
            await _produce(sim_url, 1, 0)  # warm-up: the puller serves
            await _until(seen, 1, READY_TIMEOUT_S)
            rate = await _backlog(sim_url, seen, backlog)
            latencies = await _steady(sim_url, seen, steady_rate, steady_s)
    finally:
        leftover = await bus.delete(prefix)
    return _section(backlog, rate, steady_rate, latencies, leftover)


async def _backlog(sim_url: str, seen: dict[str, tuple[float, str]], count: int) -> float:
    seen.clear()
    await _produce(sim_url, count, 0)
    await _until(seen, count, 120)
    arrivals = sorted(at for at, _ in seen.values())
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


async def _steady(
    sim_url: str, seen: dict[str, tuple[float, str]], rate: float, seconds: float
) -> list[float]:
    seen.clear()
    count = int(rate * seconds)
    await _produce(sim_url, count, rate)
    await _until(seen, count, seconds + 60)
    return [at - datetime.fromisoformat(created).timestamp() for at, created in seen.values()]


def _section(
    backlog: int, rate: float, steady_rate: float, latencies: list[float], leftover: list[str]
) -> Section:
    latency = stats.latency_ms(latencies)
    rows = [
        Row(f"backlog of {backlog}: events/s pulled onto the bus", f"{rate:.0f}"),
        Row(f"at {steady_rate:.0f} events/s: createdAt -> bus, p50 / p99", stats.p50_p99(latency)),
        Row("names left on the broker", str(len(leftover)), "0", not leftover),
    ]
    data = {"backlog": backlog, "events_per_s": round(rate, 1), "steady_rate": steady_rate,
            "latency": latency, "leftover_names": leftover}  # fmt: skip
    return Section("pull", rows, data)


async def _until(seen: dict[str, Any], count: int, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while len(seen) < count:
            await poll_interval()  # polling the observed count, within a deadline


async def _produce(sim_url: str, count: int, rate: float) -> None:
    async with aiohttp.ClientSession() as session:
        body = {"count": count, "rate": rate}
        async with session.post(f"{sim_url}/_bench/produce", json=body) as response:
            response.raise_for_status()


@contextlib.asynccontextmanager
async def _watch(prefix: str) -> AsyncIterator[dict[str, tuple[float, str]]]:
    """Every CloudEvent on the prefix's exchange: id -> (seen at, its time)."""
    seen: dict[str, tuple[float, str]] = {}

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        at = time.time()
        event = json.loads(message.body)
        seen.setdefault(event["id"], (at, event["time"]))
        await message.ack()

    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        exchange = await channel.declare_exchange(
            bus.names(prefix).amqp.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        await queue.consume(collect)
        yield seen
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _simulator() -> AsyncIterator[tuple[str, str]]:
    command = [sys.executable, "-m", "tests.benchmarks.bench_pull", "sim"]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(READY_TIMEOUT_S):
            info = json.loads(await process.stdout.readline())
        yield f"http://127.0.0.1:{info['port']}", info["subscription"]
    finally:
        await procs.stop(process)


@contextlib.asynccontextmanager
async def _puller(prefix: str, sim_url: str, subscription: str) -> AsyncIterator[None]:
    names = bus.names(prefix).amqp
    procs.LOGS.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp,
        (procs.LOGS / "pull.log").open("w") as log,
    ):
        env = {
            **os.environ, "AMQP_URL": AMQP_URL, "AMQP_EXCHANGE": names.exchange,
            "AMQP_QUEUE": names.queue, "STORE_URL": f"sqlite+aiosqlite:///{tmp}/store.sqlite3",
            "LEANIX_BASE_URL": sim_url, "LEANIX_API_TOKEN": DEFAULT_API_TOKEN,
            "LEANIX_PULL_SUBSCRIPTION_ID": subscription, "HTTP_PORT": "0", "LOG_FORMAT": "json",
            "LOG_LEVEL": "warning",
        }  # fmt: skip
        env.pop("SERVICE_CONFIG", None)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "pull", stderr=log, stdout=log, cwd=ROOT, env=env
        )
        try:
            yield
        finally:
            await procs.stop(process)


# --- the simulator's process --------------------------------------------------------------


async def serve_simulator() -> None:
    sim = LeanixSimulator(rate_limit_rps=1000.0)
    fact_sheet = sim.add_fact_sheet()
    subscription = sim.pull.subscribe()
    producing: set[asyncio.Task[None]] = set()

    async def produce(count: int, rate: float) -> None:
        started = time.monotonic()
        for n in range(count):
            if rate > 0 and (due := started + n / rate - time.monotonic()) > 0:
                await asyncio.sleep(due)  # the arrival schedule of the steady load
            sim.pull_event(fact_sheet)

    async def start(request: web.Request) -> web.Response:
        body = await request.json()
        task = asyncio.create_task(produce(int(body["count"]), float(body["rate"])))
        producing.add(task)
        task.add_done_callback(producing.discard)
        return web.json_response({"ok": True})

    app = sim.app()
    app.router.add_post("/_bench/produce", start)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"port": port, "subscription": subscription}), flush=True)
    await asyncio.Event().wait()  # until SIGTERM


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_pull")
    parser.add_argument("role", choices=["sim"])
    parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_simulator())
    return 0


if __name__ == "__main__":
    sys.exit(main())
