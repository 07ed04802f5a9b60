"""A three-node RabbitMQ cluster loses, at a steady 300 events/s, first the node the receiver
is on, then the node holding the work queue's leader: no accepted event is lost or handled
twice, 503s (each with Retry-After) come only during a failover, and the worker resumes on
the survivors without a restart.

The cluster is deploy/rabbitmq-cluster.sh's (three nodes beside the default one, which is
left alone), started in the background when the session's tests are collected
(tests/cluster.py); the test skips only where this machine cannot start several RabbitMQ
nodes. The store and event log are PostgreSQL, shared by the receiver and worker processes;
the handler is tests.cluster_handlers' idempotent count, one row per run.
"""

from __future__ import annotations

import asyncio
import json
import os
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
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.store.ids import event_key
from tests import cluster as clusters
from tests import senders
from tests.cluster import Cluster
from tests.conftest import postgres_database
from tests.faults.conftest import REPO, wait_for
from tests.waiting import poll_interval

pytestmark = pytest.mark.integration

RATE = 300  # events/s, steady, from before each stop until the survivors accept again
QUIET_RATE = 20  # events/s while a stopped node restarts and rejoins (tens of seconds): any
# 503 there still shows, and the worker is not handed a backlog it needs minutes to drain
HANDLERS = "tests.cluster_handlers"
STALL_S = 30  # no event newly handled for this long, with some not handled: lost


async def cluster_script(cluster: Cluster, *args: str, timeout_s: float = 180) -> None:
    """Run deploy/rabbitmq-cluster.sh on the session's cluster; its output through a file,
    not a pipe, which a detached node could inherit and hold open."""
    with tempfile.TemporaryFile() as out:
        process = await asyncio.create_subprocess_exec(
            "bash", str(clusters.SCRIPT), *args, env=cluster.env(), stdout=out,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(timeout_s):
            await process.wait()
        out.seek(0)
        text = out.read().decode(errors="replace").strip()
    if process.returncode != 0:
        pytest.fail(f"rabbitmq-cluster.sh {' '.join(args)}: {text}")


async def queue_leader(queue: str, ask: str) -> str:
    """The Erlang name of the node holding `queue`'s leader, as node `ask` sees it."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "-n", ask, "list_queues", "name", "leader", "--no-table-headers",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    leaders = dict(line.split()[:2] for line in out.decode().splitlines() if line.strip())
    return leaders[queue]


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """The session's cluster, once its three nodes run as one; stopped (in the background)
    after the test, the only one that uses it, so the rest of the suite has the cores."""
    reason = clusters.unable()
    if reason is not None:
        pytest.skip(reason)
    clusters.start_for_session()  # started already, unless this session collected otherwise
    assert clusters.SESSION is not None
    waited = time.monotonic()
    ready = await clusters.SESSION.ready()
    if isinstance(ready, str):
        pytest.skip(ready)
    say(f"cluster ready (waited {time.monotonic() - waited:.1f} s)")
    yield clusters.SESSION
    clusters.SESSION.stop()


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
    """What the steady sender saw: an Answer per request."""

    answers: list[Answer] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    rate: int = RATE

    def since(self, t: float) -> int:
        """Requests accepted, answered at `t` or later."""
        return sum(1 for answer in self.answers if answer.at >= t and answer.status == 202)

    def refused(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status != 202]


@dataclass(frozen=True)
class Answer:
    sent: float  # monotonic
    at: float  # answered
    status: int  # 0: no answer (the connection failed)
    retry_after: str | None


async def send_steadily(url: str, traffic: Traffic, stop: asyncio.Event) -> None:
    """POST signed LeanIX webhooks at RATE per second, each on its own schedule slot."""
    template = orjson.loads(senders.fixture("leanix-factsheet-created.json"))
    pending: set[asyncio.Task[None]] = set()
    # Fewer connections than the receiver's http.max_connections (512): while a node stops,
    # requests wait up to publish_timeout_s for their confirms, 300/s x 3 s of them, and
    # past the limit the receiver would close new connections (its overload guard, not a
    # failover's 503); the client queues those few instead.
    connector = aiohttp.TCPConnector(limit=400)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> None:
            request = senders.leanix(orjson.dumps({**template, "id": 5_000_000 + n}))
            sent = time.monotonic()
            try:
                async with session.post(url, data=request.body, headers=request.headers) as r:
                    body = await r.read()
            except (aiohttp.ClientError, TimeoutError):
                traffic.answers.append(Answer(sent, time.monotonic(), 0, None))
                return
            answer = Answer(sent, time.monotonic(), r.status, r.headers.get("Retry-After"))
            traffic.answers.append(answer)
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


async def fail_node(
    cluster: Cluster,
    index: int,
    traffic: Traffic,
    windows: list[tuple[float, float]],
    *,
    restart: bool,
) -> float:
    """Stop node `index` (0-based) and wait until events are accepted on the survivors;
    with `restart`, start it again and wait until the cluster accepts with it back (the
    next stop would leave a quorum queue one member of three). The failover window spans
    all of that; the failover time runs from the stop to the first 202 after the last 503."""
    traffic.rate = RATE
    await wait_for(lambda: traffic.since(time.monotonic() - 1) >= RATE // 2, timeout_s=30,
                   what="steady traffic before the stop")  # fmt: skip
    stopped_at = time.monotonic()
    await cluster_script(cluster, "stop-node", str(index + 1))
    say(f"node {index + 1} stopped")
    accepting = await accepting_since(traffic, stopped_at, "events accepted again on the survivors")
    say("accepting again")
    await wait_for(lambda: traffic.since(time.monotonic() - 1) >= RATE // 2, timeout_s=30,
                   what="steady traffic on the survivors")  # fmt: skip
    if restart:
        traffic.rate = QUIET_RATE
        started_at = time.monotonic()
        await cluster_script(cluster, "start-node", str(index + 1))
        say(f"node {index + 1} back")
        accepting = await accepting_since(traffic, started_at, "accepting, node back")
    windows.append((stopped_at, accepting))
    # By the time requests were sent: one sent as the node stopped waits out its confirm
    # (publish_timeout_s) and is refused after requests sent later were accepted.
    refused = [r.sent for r in traffic.refused() if r.at >= stopped_at]
    last_refused = max(refused, default=stopped_at)
    oks = [r.sent for r in traffic.answers if r.sent > last_refused and r.status == 202]
    return max(0.0, min(oks, default=accepting) - stopped_at)


@pytest.mark.timeout(600)  # the wait for the cluster's start, two node stops, a restart, the drain
async def test_failover_loses_nothing_and_handles_nothing_twice(
    cluster: Cluster, prefix: str, tmp_path: Path
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
            "receiver", {**base, "AMQP_URL": ",".join(cluster.urls)}, tmp_path / "receiver.log"
        )
        worker_urls = cluster.urls[1:] + cluster.urls[:1]  # the worker starts on another node
        worker = await start(
            "worker",
            {**base, "AMQP_URL": ",".join(worker_urls), "HANDLER_MODULES": HANDLERS},
            tmp_path / "worker.log",
        )  # fmt: skip
        try:
            await _run(receiver, worker, cluster, prefix, store_url)
        except BaseException:
            print("receiver:", *receiver.lines[-15:], "worker:", *worker.lines[-15:], sep="\n")
            raise
        finally:
            for process in (receiver, worker):
                if process.process.returncode is None:
                    process.process.terminate()
                    await process.process.wait()


async def _run(
    receiver: Process, worker: Process, cluster: Cluster, prefix: str, store_url: str
) -> None:
    await wait_for(lambda: receiver.events("http.listening") and receiver.events("broker.ready"),
                   timeout_s=60, what="the receiver ready")  # fmt: skip
    await wait_for(lambda: worker.events("worker.consuming") or worker.events("broker.ready"),
                   timeout_s=60, what="the worker ready")  # fmt: skip
    port = receiver.events("http.listening")[0]["port"]
    ports = [url.rsplit(":", 1)[1].strip("/") for url in cluster.urls]
    traffic, stop, windows = Traffic(), asyncio.Event(), []
    sender = asyncio.create_task(
        send_steadily(f"http://127.0.0.1:{port}/webhooks/leanix", traffic, stop)
    )
    try:
        await wait_for(lambda: len(traffic.accepted) >= RATE, what="a second of steady traffic")

        say("steady traffic")
        receiver_node = ports.index(await node_of(receiver, 0))
        mark = len(receiver.lines)
        first = await fail_node(cluster, receiver_node, traffic, windows, restart=True)
        assert ports.index(await node_of(receiver, mark)) != receiver_node
        say(f"receiver's node {receiver_node + 1} failed over")
        leader = await queue_leader(f"{prefix}.worker", cluster.node((receiver_node + 1) % 3))
        # Not started again: two of three nodes keep the quorum; the cluster stops after the test.
        second = await fail_node(
            cluster, cluster.nodes.index(leader), traffic, windows, restart=False
        )
        say(f"queue leader's node {leader} failed over")
        traffic.rate = RATE
        await wait_for(lambda: traffic.since(time.monotonic() - 1) >= RATE // 2, timeout_s=60,
                       what="steady traffic after both failovers")  # fmt: skip
    finally:
        stop.set()  # on a failure too: no request left to a receiver being stopped
        await sender
    print(f"\nfailover: receiver's node {first:.2f} s, queue leader's node {second:.2f} s; "
          f"{len(traffic.accepted)} accepted, {_refused(traffic)} refused")  # fmt: skip

    say("waiting for every accepted event to be handled")
    accepted = set(traffic.accepted)
    engine = create_async_engine(store_url)
    try:
        counts = await _handled(engine, accepted)
        assert len(accepted) == len(traffic.accepted)
        assert counts is not None
        twice = [event for event in accepted if counts[event] != 1]
        assert not twice, "handled twice"
        _assert_refusals_only_in_failover(traffic, windows)
        cut = await _assert_event_log(engine, accepted)
    finally:
        await engine.dispose()
    assert worker.process.returncode is None and receiver.process.returncode is None
    clusters.REPORT.append(
        f"cluster failover: receiver's node {first:.2f} s, queue leader's node {second:.2f} s; "
        f"{len(accepted)} accepted, {_refused(traffic)} refused (503 + Retry-After, in "
        f"failover only), 0 lost, {len(twice)} handled twice, {cut} logged by their redelivery"
    )


def say(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


def _refused(traffic: Traffic) -> int:
    return len(traffic.refused())


async def _create_counts(store_url: str) -> None:
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE cluster_counts (event_id text)"))
    finally:
        await engine.dispose()


async def _handled(engine: AsyncEngine, accepted: set[str]) -> Counter[str]:
    """The counting handler's runs per event, once every accepted event has one.

    Waited for as long as the worker makes progress (on a starved machine it handled 15
    events/s, and a run accepts 1,000-4,500), failing once no event was newly handled for
    STALL_S: a lost event stalls the count short of the accepted ones."""
    seen, progressed = 0, time.monotonic()
    while True:
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT event_id FROM cluster_counts"))
            counts = Counter(row[0] for row in rows)
        missing = accepted - set(counts)
        if not missing:
            return counts
        if len(counts) > seen:
            seen, progressed = len(counts), time.monotonic()
        elif time.monotonic() - progressed > STALL_S:
            raise AssertionError(
                f"{len(missing)} accepted events not handled, none newly handled for "
                f"{STALL_S} s: e.g. {sorted(missing)[:3]}"
            )
        await poll_interval()  # the next look at the counts (a deadline above)


def _assert_refusals_only_in_failover(traffic: Traffic, windows: list[tuple[float, float]]) -> None:
    """Every refusal a 503 with Retry-After, to a request sent before a failover's end and
    answered after its start (its confirm may time out after the failover)."""
    for r in traffic.refused():
        assert r.status == 503, r
        assert r.retry_after is not None and int(r.retry_after) >= 1
        assert any(start <= r.at and r.sent <= end for start, end in windows), (
            f"a 503 outside failover: {r}, failovers {windows}"
        )


async def _assert_event_log(engine: AsyncEngine, accepted: set[str]) -> int:
    """The event log: every accepted event handled, never by two successful attempts; how
    many were logged only by their redelivery.

    The worker logs a delivery after its handler's transaction committed (the count), so
    the log may lag the counts: waited for, with a deadline. A delivery whose channel
    closed after its handler's transaction committed is cancelled before its log write;
    its redelivery finds the work done and is logged `skipped`. Such an event has no `ok`
    attempt and one `skipped`: handled once (the counting handler says so too), its first
    attempt's log line lost with the channel."""
    keys = {event_key(event) for event in accepted}

    async def unlogged() -> dict[str, str | None]:
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT id, status FROM events"))
            statuses = dict(rows.all())
        return {key: statuses.get(key) for key in keys if statuses.get(key) != "handled"}

    async def all_logged() -> bool:
        return not await unlogged()

    try:
        await wait_for(all_logged, timeout_s=30, what="every accepted event logged handled")
    except AssertionError:
        left = await unlogged()
        raise AssertionError(f"{len(left)} not logged handled: {list(left.items())[:5]}") from None
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT event_id, outcome FROM attempts"))
        outcomes = rows.all()
    oks = Counter(event for event, outcome in outcomes if outcome == "ok")
    skips = Counter(event for event, outcome in outcomes if outcome == "skipped")
    assert not [key for key in keys if oks[key] > 1], "an event with two successful attempts"
    assert not [key for key in keys if oks[key] + skips[key] == 0], "an event never handled"
    cut = sum(1 for key in keys if oks[key] == 0)
    say(f"event log: {len(keys)} handled once; {cut} logged only by their redelivery (skipped)")
    return cut
