"""A three-node RabbitMQ cluster loses, at a steady 300 events/s, first the node the receiver
is on, then the node holding the work queue's leader: no accepted event is lost or handled
twice, 503s (each with Retry-After) come only during a failover, and the worker resumes on
the survivors without a restart.

The cluster is deploy/rabbitmq-cluster.sh's (three nodes beside the default one, which is
left alone); the store and event log are PostgreSQL, shared by the receiver and worker
processes; the handler is tests.cluster_handlers' idempotent count, one row per run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from service.store.ids import event_key
from tests import senders
from tests.conftest import postgres_database
from tests.faults.conftest import REPO, wait_for

pytestmark = pytest.mark.integration

SCRIPT = REPO / "deploy" / "rabbitmq-cluster.sh"
RATE = 300  # events/s, steady, from before each stop until the survivors accept again
QUIET_RATE = 20  # events/s while a stopped node restarts and rejoins (tens of seconds): any
# 503 there still shows, and the worker is not handed a backlog it needs minutes to drain
HANDLERS = "tests.cluster_handlers"
NODES = ("bridge-c1@localhost", "bridge-c2@localhost", "bridge-c3@localhost")
can_cluster = shutil.which("rabbitmq-server") is not None and os.geteuid() == 0
# Opt-in (`make test-cluster`): three extra nodes, two node restarts and 300 events/s
# through PostgreSQL take minutes on a 2-core machine (a node's start alone 8-45 s, by
# load), past the whole suite's budget of ~9 minutes; and at load 6-12 from other suites
# the receiver itself was starved for seconds (no request answered), which no failover
# explains. Run it alone.
opted_in = os.environ.get("BRIDGE_CLUSTER_TESTS") == "1"


async def cluster_script(*args: str, timeout_s: float = 180, check: bool = True) -> str:
    """Run deploy/rabbitmq-cluster.sh; its output through a file, not a pipe, which a
    detached node could inherit and hold open. Unchecked, a failure returns ""."""
    with tempfile.TemporaryFile() as out:
        process = await asyncio.create_subprocess_exec(
            "bash", str(SCRIPT), *args, stdout=out, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(timeout_s):
            await process.wait()
        out.seek(0)
        text = out.read().decode(errors="replace").strip()
    if process.returncode != 0 and not check:
        return ""
    if process.returncode != 0:
        pytest.fail(f"rabbitmq-cluster.sh {' '.join(args)}: {text}")
    return text


async def queue_leader(queue: str, ask: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "-n", ask, "list_queues", "name", "leader", "--no-table-headers",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    leaders = dict(line.split()[:2] for line in out.decode().splitlines() if line.strip())
    return leaders[queue]


@pytest.fixture
async def cluster() -> AsyncIterator[list[str]]:
    """The three nodes' URLs: a cluster already running is used (and left running), else
    one is started for the test and stopped after it."""
    if not can_cluster:
        pytest.skip("a RabbitMQ cluster on this machine needs rabbitmq-server and root")
    running = await cluster_script("running", check=False)
    if running:
        yield running.splitlines()[-1].split(",")
        return
    urls = (await cluster_script("start")).splitlines()[-1].split(",")
    yield urls
    await cluster_script("stop")


@dataclass
class Process:
    """A `python -m service` process and the JSON lines it logged.

    It logs to a file, not a pipe: at 300 events/s a process logs hundreds of lines a
    second, and a test that read them from a pipe more slowly than they came (a loaded
    machine) would block the process's writes, and with them its event loop, for seconds:
    confirms overdue (503s), claims not renewed, all outside any failover."""

    process: asyncio.subprocess.Process
    log: Path
    _lines: list[dict[str, Any]] = field(default_factory=list)
    _read: int = 0

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every line logged so far (complete lines only)."""
        with self.log.open("rb") as file:
            file.seek(self._read)
            chunk = file.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        for raw in complete.splitlines():
            try:
                self._lines.append(json.loads(raw))
            except ValueError:
                self._lines.append({"text": raw.decode(errors="replace")})
        return self._lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]


async def start(mode: str, env: dict[str, str], log: Path) -> Process:
    with log.open("wb") as file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", mode, cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=file,
        )  # fmt: skip
    return Process(process, log)


@dataclass
class Traffic:
    """What the steady sender saw: (monotonic time, status, Retry-After) per request."""

    answers: list[tuple[float, int, str | None]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    rate: int = RATE

    def since(self, t: float) -> int:
        return sum(1 for at, status, _ in self.answers if at >= t and status == 202)


async def send_steadily(url: str, traffic: Traffic, stop: asyncio.Event) -> None:
    """POST signed LeanIX webhooks at RATE per second, each on its own schedule slot."""
    template = orjson.loads(senders.fixture("leanix-factsheet-created.json"))
    pending: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=0)  # no queue in the client: the rate is the rate
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> None:
            request = senders.leanix(orjson.dumps({**template, "id": 5_000_000 + n}))
            async with session.post(url, data=request.body, headers=request.headers) as r:
                body = await r.read()
                traffic.answers.append((time.monotonic(), r.status, r.headers.get("Retry-After")))
                if r.status == 202:
                    traffic.accepted.append(orjson.loads(body)["id"])

        begun, due, n = time.monotonic(), 0.0, 0
        while not stop.is_set():
            now = time.monotonic()
            due, begun = due + (now - begun) * traffic.rate, now
            for _ in range(int(due) - n):
                n += 1
                task = asyncio.create_task(one(n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / RATE)  # the sender's pacing, not a wait for a result
        await asyncio.gather(*pending, return_exceptions=True)


async def node_of(process: Process, after: int) -> str:
    """The port of the node `process` logged it connected to after its line `after`."""
    await wait_for(
        lambda: any(x.get("event") == "broker.connected" for x in process.lines[after:]),
        timeout_s=60,
        what="the process connected to a node",
    )
    connected = [x for x in process.lines[after:] if x.get("event") == "broker.connected"]
    assert "guest:***@" in connected[-1]["node"]  # the node is named, its password masked
    return str(connected[-1]["node"]).rsplit(":", 1)[1].strip("/")


async def accepting_since(traffic: Traffic, since: float, what: str) -> float:
    """Wait until events are accepted again, answered after `since`; when that was."""
    await wait_for(
        lambda: traffic.since(max(since, time.monotonic() - 0.5)) >= max(5, traffic.rate // 10),
        timeout_s=60, what=what,
    )  # fmt: skip
    return time.monotonic()


async def fail_node(index: int, traffic: Traffic, windows: list[tuple[float, float]]) -> float:
    """Stop node `index` (0-based), wait until events are accepted on the survivors, start
    it again and wait until the cluster accepts with it back. The failover window spans
    all of that; the failover time runs from the stop to the first 202 after the last 503."""
    traffic.rate = RATE
    await wait_for(lambda: traffic.since(time.monotonic() - 1) >= RATE // 2, timeout_s=30,
                   what="steady traffic before the stop")  # fmt: skip
    stopped_at = time.monotonic()
    await cluster_script("stop-node", str(index + 1))
    say(f"node {index + 1} stopped")
    await accepting_since(traffic, stopped_at, "events accepted again on the survivors")
    say("accepting again")
    await wait_for(lambda: traffic.since(time.monotonic() - 1) >= RATE // 2, timeout_s=30,
                   what="steady traffic on the survivors")  # fmt: skip
    traffic.rate = QUIET_RATE
    started_at = time.monotonic()
    await cluster_script("start-node", str(index + 1))
    say(f"node {index + 1} back")
    windows.append((stopped_at, await accepting_since(traffic, started_at, "accepting, node back")))
    refused = [at for at, status, _ in traffic.answers if at >= stopped_at and status != 202]
    last_refused = max(refused, default=stopped_at)
    oks = [at for at, status, _ in traffic.answers if at > last_refused and status == 202]
    return min(oks, default=windows[-1][1]) - stopped_at


@pytest.mark.skipif(not can_cluster, reason="a RabbitMQ cluster needs rabbitmq-server and root")
@pytest.mark.skipif(not opted_in, reason="the cluster failover test: set BRIDGE_CLUSTER_TESTS=1")
@pytest.mark.timeout(600)  # the cluster's start, two node stops and restarts, the drain
async def test_failover_loses_nothing_and_handles_nothing_twice(
    cluster: list[str], prefix: str, tmp_path: Path
) -> None:
    config = tmp_path / "service.toml"
    # A confirm may wait out a quorum leader's election (seconds); a timeout of 1 s also
    # refused, on a starved machine, publishes no failover delayed.
    config.write_text("[amqp]\nconnect_retry_s = 0.3\n[http]\npublish_timeout_s = 3.0\n")
    async with postgres_database(prefix) as store_url:
        await _create_counts(store_url)
        base = {
            **{k: v for k, v in os.environ.items() if k != "SERVICE_CONFIG"},
            "SERVICE_CONFIG": str(config),
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0", "LOG_FORMAT": "json",
            "AMQP_EXCHANGE": f"{prefix}.events", "AMQP_QUEUE": f"{prefix}.worker",
            "STORE_URL": store_url,
            "LEANIX_WEBHOOK_AUTHORIZATION": senders.LEANIX_AUTH,
        }  # fmt: skip
        receiver = await start(
            "receiver", {**base, "AMQP_URL": ",".join(cluster)}, tmp_path / "receiver.log"
        )
        worker_urls = cluster[1:] + cluster[:1]  # the worker starts on another node
        worker = await start(
            "worker",
            {**base, "AMQP_URL": ",".join(worker_urls), "HANDLER_MODULES": HANDLERS},
            tmp_path / "worker.log",
        )  # fmt: skip
        try:
            await _run(receiver, worker, cluster, prefix, store_url, tmp_path)
        except BaseException:
            print("receiver:", *receiver.lines[-15:], "worker:", *worker.lines[-15:], sep="\n")
            raise
        finally:
            for process in (receiver, worker):
                if process.process.returncode is None:
                    process.process.terminate()
                    await process.process.wait()


async def _run(
    receiver: Process, worker: Process, urls: list[str], prefix: str, store_url: str, tmp: Path
) -> None:
    await wait_for(lambda: receiver.events("http.listening") and receiver.events("broker.ready"),
                   timeout_s=60, what="the receiver ready")  # fmt: skip
    await wait_for(lambda: worker.events("worker.consuming") or worker.events("broker.ready"),
                   timeout_s=60, what="the worker ready")  # fmt: skip
    port = receiver.events("http.listening")[0]["port"]
    ports = [url.rsplit(":", 1)[1].strip("/") for url in urls]
    traffic, stop, windows = Traffic(), asyncio.Event(), []
    sender = asyncio.create_task(
        send_steadily(f"http://127.0.0.1:{port}/webhooks/leanix", traffic, stop)
    )
    await wait_for(lambda: len(traffic.accepted) >= RATE, what="a second of steady traffic")

    say("steady traffic")
    receiver_node = ports.index(await node_of(receiver, 0))
    mark = len(receiver.lines)
    first = await fail_node(receiver_node, traffic, windows)
    assert ports.index(await node_of(receiver, mark)) != receiver_node
    say(f"receiver's node {receiver_node + 1} failed over")
    leader = await queue_leader(f"{prefix}.worker", NODES[(receiver_node + 1) % 3])
    second = await fail_node(NODES.index(leader), traffic, windows)
    say(f"queue leader's node {leader} failed over")
    traffic.rate = RATE
    await wait_for(lambda: traffic.since(time.monotonic() - 1) >= RATE // 2, timeout_s=60,
                   what="steady traffic after both failovers")  # fmt: skip
    stop.set()
    await sender
    print(f"\nfailover: receiver's node {first:.2f} s, queue leader's node {second:.2f} s; "
          f"{len(traffic.accepted)} accepted, {_refused(traffic)} refused")  # fmt: skip

    say("waiting for every accepted event to be handled")
    accepted = set(traffic.accepted)
    await wait_for(lambda: _counts(store_url, accepted), timeout_s=60 + len(accepted) / 25,
                   what="every accepted event handled")  # fmt: skip
    assert len(accepted) == len(traffic.accepted)
    counts = await _counts(store_url, accepted)
    assert not [event for event in accepted if counts[event] != 1], "handled twice"
    _assert_refusals_only_in_failover(traffic, windows)
    await _assert_event_log(store_url, accepted)
    assert worker.process.returncode is None and receiver.process.returncode is None


def say(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


def _refused(traffic: Traffic) -> int:
    return sum(1 for _, status, _ in traffic.answers if status != 202)


async def _create_counts(store_url: str) -> None:
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE cluster_counts (event_id text)"))
    finally:
        await engine.dispose()


async def _counts(store_url: str, accepted: set[str]) -> Counter[str] | None:
    """The counting handler's runs per event, once every accepted event has one."""
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT event_id FROM cluster_counts"))
            counts = Counter(row[0] for row in rows)
    finally:
        await engine.dispose()
    return counts if accepted <= set(counts) else None


def _assert_refusals_only_in_failover(traffic: Traffic, windows: list[tuple[float, float]]) -> None:
    for at, status, retry_after in traffic.answers:
        if status == 202:
            continue
        assert status == 503, status
        assert retry_after is not None and int(retry_after) >= 1
        assert any(start <= at <= end + 1.0 for start, end in windows), "a 503 outside failover"


async def _assert_event_log(store_url: str, accepted: set[str]) -> None:
    """The event log: every accepted event handled, never by two successful attempts.

    A delivery whose channel closed after its handler's transaction committed is cancelled
    before its log write; its redelivery finds the work done and is logged `skipped`. Such
    an event has no `ok` attempt and one `skipped`: handled once (the counting handler says
    so too), its first attempt's log line lost with the channel."""
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as connection:
            statuses = dict(
                (await connection.execute(sa.text("SELECT id, status FROM events"))).all()
            )
            outcomes = (
                await connection.execute(sa.text("SELECT event_id, outcome FROM attempts"))
            ).all()
    finally:
        await engine.dispose()
    oks = Counter(event for event, outcome in outcomes if outcome == "ok")
    skips = Counter(event for event, outcome in outcomes if outcome == "skipped")
    keys = {event_key(event) for event in accepted}
    assert all(statuses.get(key) == "handled" for key in keys)
    assert not [key for key in keys if oks[key] > 1], "an event with two successful attempts"
    assert not [key for key in keys if oks[key] + skips[key] == 0], "an event never handled"
    cut = sum(1 for key in keys if oks[key] == 0)
    say(f"event log: {len(keys)} handled once; {cut} logged only by their redelivery (skipped)")
