"""Production-shaped: 2 receiver processes, 2 workers, PostgreSQL, a quorum queue.

The shape of deploy/k8s on one machine: `python -m service receiver` with
http.processes = 2 (two processes sharing the port), two `python -m service worker`
processes with tests.benchmarks.prod_handlers (idempotent: claim, mark and event log in
PostgreSQL, as a rule's run costs), the run store and event log in a database of their
own on the PostgreSQL at TEST_POSTGRES_URL, the work queue a quorum queue on the
three-node cluster of deploy/rabbitmq-cluster.sh (used if running, else started and
stopped again; one node, the default, where a cluster cannot start or BENCH_CLUSTER=0).
Logs at info, as production runs, to bench-results/logs/.

Per publisher (`amqp.publisher` = fast, then aio-pika), `rounds` times each:
1. backlog: the receivers at saturation with no worker (closed loop), then both workers
   start: the drain rate (first to last handler start) and PostgreSQL's cost per event
   (pg_stat_database deltas over the drain: commits, rows written and read, active time;
   pg_stat_statements would need a server restart to load);
2. end to end at 500 and 1,000 events/s (open loop): send -> handler start p50/p99;
3. saturation with the workers running (closed loop): accepted/s and handled/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from tests import senders
from tests.benchmarks import bus, procs
from tests.benchmarks.config import AMQP_URL, READY_TIMEOUT_S, ROOT, Plan, new_prefix
from tests.benchmarks.procs import LOGS
from tests.benchmarks.report import Row, Section
from tests.benchmarks.stats import latency_ms, p50_p99
from tests.conftest import postgres_database
from tests.waiting import poll_interval

SCRIPT = ROOT / "deploy" / "rabbitmq-cluster.sh"
HANDLERS = "tests.benchmarks.prod_handlers"
PUBLISHERS = ("fast", "aio-pika")
RATES = (500.0, 1000.0)
DRAIN_TIMEOUT_S = 240.0
STATS = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")


@dataclass(frozen=True)
class Broker:
    urls: list[str]
    where: str  # "3-node cluster" or "one node"
    started: bool  # we started the cluster, so we stop it


async def run(plan: Plan) -> Section:
    broker = await cluster()
    rounds: dict[str, list[dict[str, Any]]] = {p: [] for p in PUBLISHERS}
    try:
        for n in range(plan.prod_rounds):
            for publisher in PUBLISHERS if n % 2 == 0 else reversed(PUBLISHERS):
                procs_progress(f"prod: {publisher}, round {n + 1} of {plan.prod_rounds}")
                rounds[publisher].append(await one_round(plan, broker, publisher))
    finally:
        if broker.started:
            await script("stop")
    return section(plan, broker, rounds)


def procs_progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def script(*args: str) -> tuple[int, str]:
    with tempfile.TemporaryFile() as out:  # a file: a detached node may hold a pipe open
        process = await asyncio.create_subprocess_exec(
            "bash", str(SCRIPT), *args, stdout=out, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(300):
            code = await process.wait()
        out.seek(0)
        return code, out.read().decode(errors="replace").strip()


async def cluster() -> Broker:
    """The cluster's URLs (running, or started here), else the one default node."""
    if os.environ.get("BENCH_CLUSTER") == "0":
        return Broker([AMQP_URL], "one node (BENCH_CLUSTER=0)", False)
    if shutil.which("rabbitmq-server") is None or os.geteuid() != 0:
        return Broker([AMQP_URL], "one node (a cluster needs rabbitmq-server and root)", False)
    code, out = await script("running")
    if code == 0:
        return Broker(out.splitlines()[-1].split(","), "3-node cluster", False)
    code, out = await script("start")
    if code != 0:
        return Broker([AMQP_URL], f"one node (the cluster did not start: {out[-200:]})", False)
    return Broker(out.splitlines()[-1].split(","), "3-node cluster", True)


async def one_round(plan: Plan, broker: Broker, publisher: str) -> dict[str, Any]:
    prefix = new_prefix("prod")
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prod-") as tmp:
        config = Path(tmp) / "service.toml"
        config.write_text(f'[amqp]\npublisher = "{publisher}"\n[http]\nprocesses = 2\n')
        async with postgres_database(prefix) as store_url:
            dsn = make_url(store_url).set(drivername="postgresql")
            db = await asyncpg.connect(dsn.render_as_string(hide_password=False))
            try:
                env = environment(prefix, broker, store_url, config, Path(tmp))
                result = await _measure(plan, env, db, publisher)
            finally:
                await db.close()
                await bus.delete(prefix)
    return result


def environment(
    prefix: str, broker: Broker, store_url: str, config: Path, tmp: Path
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
        "SERVICE_CONFIG": str(config),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp),
        "HTTP_HOST": "127.0.0.1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "AMQP_URL": ",".join(broker.urls),
        "AMQP_EXCHANGE": f"{prefix}.events",
        "AMQP_QUEUE": f"{prefix}.worker",
        "STORE_URL": store_url,
        "HANDLER_MODULES": HANDLERS,
        "LEANIX_WEBHOOK_AUTHORIZATION": senders.LEANIX_AUTH,
    }


async def _measure(
    plan: Plan, env: dict[str, str], db: asyncpg.Connection, publisher: str
) -> dict[str, Any]:
    from tests.benchmarks.prod_handlers import CREATE

    await db.execute(CREATE)
    port = _free_port()
    result: dict[str, Any] = {"publisher": publisher}
    async with service("receiver", {**env, "HTTP_PORT": str(port)}, f"prod-{publisher}-receiver"):
        url = f"http://127.0.0.1:{port}"
        await procs._every_process_ready(url)
        backlog = await procs.loadgen(_load(plan, url, "closed", plan.prod_backlog_s))
        result["ingest_no_workers_per_s"] = backlog["accepted_per_s"]
        before = await _stats(db)
        async with (
            service("worker", {**env, "HTTP_PORT": "0"}, f"prod-{publisher}-worker1") as w1,
            service("worker", {**env, "HTTP_PORT": "0"}, f"prod-{publisher}-worker2") as w2,
        ):
            await _consuming(w1, w2)
            starts = await _handled(db, backlog["accepted"])
            after = await _stats(db)
            result["drain"] = _drain(starts, before, after)
            for rate in RATES:
                load = await procs.loadgen(_load(plan, url, "open", plan.prod_s, rate))
                result[f"e2e_{rate:.0f}"] = await _e2e(db, load)
            window_start = time.perf_counter()
            saturated = await procs.loadgen(_load(plan, url, "closed", plan.prod_s))
            handled_in = await db.fetchval(
                "SELECT count(*) FROM bench_starts WHERE started >= $1",
                window_start + plan.warmup_s,
            )
            result["saturation"] = {
                "accepted_per_s": saturated["accepted_per_s"],
                "handled_per_s": round(handled_in / plan.prod_s, 1),
                "statuses": saturated["statuses"],
                "latency": saturated["latency"],
            }
            total = await db.fetchval("SELECT count(*) FROM bench_starts")
            await _handled(db, total)  # the saturation's backlog, before the workers stop
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _load(plan: Plan, url: str, mode: str, duration_s: float, rate: float = 0.0) -> dict[str, Any]:
    return {
        "url": f"{url}/webhooks/leanix",
        "mode": mode,
        "connections": plan.connections,
        "warmup_s": plan.warmup_s,
        "duration_s": duration_s,
        "rate": rate,
    }


@dataclass
class Service:
    process: asyncio.subprocess.Process
    log: Path

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for raw in self.log.read_bytes().splitlines():
            if b'"event"' in raw and name.encode() in raw:
                with contextlib.suppress(ValueError):
                    line = orjson.loads(raw)
                    if line.get("event") == name:
                        found.append(line)
        return found


@contextlib.asynccontextmanager
async def service(mode: str, env: dict[str, str], log_name: str) -> AsyncIterator[Service]:
    """`python -m service <mode>`, logging to bench-results/logs/<log_name>.log (a file:
    never a pipe the benchmark could fall behind on)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{log_name}.log"
    with log.open("wb") as file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", mode, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=file,
        )  # fmt: skip
    try:
        yield Service(process, log)
    finally:
        await procs.stop(process)


async def _consuming(*workers: Service) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while not all(w.events("worker.consuming") for w in workers):
            if any(w.process.returncode is not None for w in workers):
                raise RuntimeError("a worker exited before consuming: see bench-results/logs")
            await poll_interval()


async def _handled(db: asyncpg.Connection, expected: int) -> list[float]:
    """Every handler start, once `expected` events have one and no more came for a second
    (the warm-up's events count too), or the deadline passed."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    last, still = -1, 0
    while time.monotonic() < deadline and still < 5:
        count = await db.fetchval("SELECT count(*) FROM bench_starts")
        still = still + 1 if count >= expected and count == last else 0
        last = count
        await asyncio.sleep(0.2)  # polling the store, with a deadline
    rows = await db.fetch("SELECT started FROM bench_starts ORDER BY started")
    return [row[0] for row in rows]


async def _stats(db: asyncpg.Connection) -> dict[str, float]:
    """This database's counters (pg_stat_database: a backend reports at each transaction's
    end, at most every 1 s with PostgreSQL 15's cumulative statistics)."""
    await asyncio.sleep(1.1)  # let the backends' pending statistics reach the counters
    row = await db.fetchrow(
        f"SELECT {', '.join(STATS)}, active_time FROM pg_stat_database "
        "WHERE datname = current_database()"
    )
    return {key: float(row[key]) for key in (*STATS, "active_time")}


def _drain(
    starts: list[float], before: dict[str, float], after: dict[str, float]
) -> dict[str, Any]:
    n = len(starts)
    span = starts[-1] - starts[0] if n > 1 else 0.0
    per_event = {key: round((after[key] - before[key]) / max(1, n), 2) for key in before}
    return {
        "events": n,
        "events_per_s": round((n - 1) / span, 1) if span > 0 else 0.0,
        "pg_per_event": per_event,
    }


async def _e2e(db: asyncpg.Connection, load: dict[str, Any]) -> dict[str, Any]:
    accepted = {r[0]: r for r in load["records"] if r[2] == 202}
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        rows = await db.fetch(
            "SELECT event_id, started FROM bench_starts WHERE event_id = ANY($1::text[])",
            list(accepted),
        )
        seen = {row[0]: row[1] for row in rows}
        if len(seen) >= len(accepted):
            break
        await asyncio.sleep(0.2)  # polling the store, with a deadline
    measured = [seen[i] - r[1] for i, r in accepted.items() if r[3] and i in seen]
    return {
        "offered_per_s": load["config"]["rate"],
        "accepted_per_s": load["accepted_per_s"],
        "statuses": load["statuses"],
        "send_to_202": load["latency"],
        "send_to_handler": latency_ms(measured),
        "lost": len([i for i in accepted if i not in seen]),
    }


def _spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    if not values:
        return "-"
    text = " / ".join(f"{v:.{digits}f}" for v in values)
    return f"{text}{unit}"


def section(plan: Plan, broker: Broker, rounds: dict[str, list[dict[str, Any]]]) -> Section:
    shape = f"2 receiver processes, 2 workers, PostgreSQL, quorum queue on {broker.where}"
    rows = [Row("shape", shape)]
    for publisher, results in rounds.items():
        done = [r for r in results if r]
        name = f"[{publisher}]"
        rows += [
            Row(f"{name} ingest at saturation, no worker (events/s, per round)",
                _spread([r["ingest_no_workers_per_s"] for r in done])),
            Row(f"{name} saturation with workers: accepted / handled per s",
                " ; ".join(f"{r['saturation']['accepted_per_s']:.0f} / "
                           f"{r['saturation']['handled_per_s']:.0f}" for r in done)),
            Row(f"{name} drain, 2 workers (events/s)",
                _spread([r["drain"]["events_per_s"] for r in done])),
        ]  # fmt: skip
        for rate in RATES:
            key = f"e2e_{rate:.0f}"
            rows.append(Row(
                f"{name} send -> handler start at {rate:.0f}/s: p50 / p99",
                " ; ".join(p50_p99(r[key]["send_to_handler"]) for r in done),
            ))  # fmt: skip
        rows.append(Row(
            f"{name} PostgreSQL per event: commits / rows written / rows read / active ms",
            " ; ".join(_pg(r["drain"]["pg_per_event"]) for r in done),
        ))  # fmt: skip
        lost = sum(r[f"e2e_{rate:.0f}"]["lost"] for r in done for rate in RATES)
        rows.append(Row(f"{name} lost (202, never handled)", str(lost), "0", lost == 0))
    return Section("prod", rows, {"broker": broker.where, "rounds": rounds})


def _pg(stats: dict[str, float]) -> str:
    written = stats["tup_inserted"] + stats["tup_updated"] + stats["tup_deleted"]
    return (
        f"{stats['xact_commit']:.1f} / {written:.1f} / {stats['tup_fetched']:.1f} / "
        f"{stats['active_time']:.2f}"
    )
