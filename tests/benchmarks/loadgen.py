"""The load generator: signed LeanIX webhooks, from a process of its own.

    python -m tests.benchmarks.loadgen '<config json>' RESULT_PATH

closed  `connections` senders, each posting again as soon as its answer arrives: the
        highest rate the server sustains. Counts and times the answers that complete
        inside the measured window (after the warm-up).
open    one request every 1/`rate` s whatever the answers do, at most `connections` at
        once; records each request's event id and send time (perf_counter, which on
        Linux is CLOCK_MONOTONIC, comparable across processes) for end-to-end latency.

Every body is the LeanIX fixture with its own "id", so every event id differs. Prints
"warm" on stdout when the warm-up ends and writes its result as JSON to RESULT_PATH.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests import senders
from tests.benchmarks.config import FIXTURE
from tests.benchmarks.stats import latency_ms

HEADERS = {"Content-Type": "application/json", "Authorization": senders.LEANIX_AUTH}


@dataclass(frozen=True)
class Config:
    url: str
    mode: str  # closed | open
    connections: int
    warmup_s: float
    duration_s: float
    rate: float = 0.0  # open loop: requests per second


class Bodies:
    """The LeanIX fixture with a fresh numeric "id" each time."""

    def __init__(self) -> None:
        self.template = orjson.loads(FIXTURE.read_bytes())
        self.ids = itertools.count(secrets.randbelow(10**9) * 10**6)

    def next(self) -> bytes:
        return orjson.dumps(self.template | {"id": next(self.ids)})


@dataclass
class Window:
    """The run's clock marks: start, end of the warm-up, end of the measured window."""

    start: float
    warm_end: float
    end: float
    cpu_at_warm: float = 0.0
    cpu_at_end: float = 0.0

    @classmethod
    def after(cls, config: Config) -> Window:
        start = time.perf_counter()
        warm_end = start + config.warmup_s
        return cls(start, warm_end, warm_end + config.duration_s)

    def measured(self, t: float) -> bool:
        return self.warm_end <= t <= self.end


@dataclass
class Answers:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    records: list[list[Any]] = field(default_factory=list)  # open: id, sent, status, measured


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, str | None]:
    """POST one event; return the status (0: no answer) and the event id of a 202."""
    try:
        async with session.post(url, data=body, headers=HEADERS) as response:
            answer = await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return 0, None
    if response.status != 202:
        return response.status, None
    return 202, str(orjson.loads(answer)["id"])


async def announce_warm(window: Window) -> None:
    await asyncio.sleep(window.warm_end - time.perf_counter())  # pacing, not a wait on results
    window.cpu_at_warm = own_cpu_s()
    print("warm", flush=True)


async def closed_loop(
    session: aiohttp.ClientSession, config: Config, window: Window, answers: Answers
) -> None:
    bodies = Bodies()

    async def sender() -> None:
        while time.perf_counter() < window.end:
            started = time.perf_counter()
            status, _ = await post(session, config.url, bodies.next())
            done = time.perf_counter()
            if window.measured(done):
                answers.statuses[status] += 1
                if status == 202:
                    answers.latencies_s.append(done - started)

    await asyncio.gather(*(sender() for _ in range(config.connections)))


async def open_loop(
    session: aiohttp.ClientSession, config: Config, window: Window, answers: Answers
) -> None:
    bodies = Bodies()
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float) -> None:
        sent = time.perf_counter()
        status, event_id = await post(session, config.url, bodies.next())
        latency = time.perf_counter() - sent
        measured = window.measured(due)
        answers.records.append([event_id, sent, status, measured, sent - due])
        if measured:
            answers.statuses[status] += 1
            if status == 202:
                answers.latencies_s.append(latency)

    for n in itertools.count():
        due = window.start + n / config.rate
        if due >= window.end:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))  # pacing
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*list(tasks))


async def run(config: Config) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=config.connections)
    timeout = aiohttp.ClientTimeout(total=30)
    answers = Answers()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        window = Window.after(config)
        warm = asyncio.create_task(announce_warm(window))
        drive = closed_loop if config.mode == "closed" else open_loop
        await drive(session, config, window, answers)
        window.cpu_at_end = own_cpu_s()
        await warm
    return summary(config, window, answers)


def summary(config: Config, window: Window, answers: Answers) -> dict[str, Any]:
    accepted = answers.statuses[202]
    cpu = window.cpu_at_end - window.cpu_at_warm
    return {
        "config": config.__dict__,
        "accepted": accepted,
        "accepted_per_s": round(accepted / config.duration_s, 1),
        "statuses": {str(k): v for k, v in sorted(answers.statuses.items())},
        "latency": latency_ms(answers.latencies_s),
        "latencies_s": answers.latencies_s if config.mode == "closed" else [],
        "loadgen_cpu_percent": round(100 * cpu / config.duration_s, 1),
        "records": answers.records,
    }


def main(argv: list[str]) -> int:
    config = Config(**orjson.loads(argv[0]))
    result = asyncio.run(run(config))
    Path(argv[1]).write_bytes(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
