"""LeanIX write-back: update_many against one update_fact_sheet per request; and three
workers writing back as one LeanIX user.

Both go through LeanixClient to a LeanixSimulator served in this process, which answers
429 beyond `rate_limit_rps` (30/s). Each update replaces one fact sheet's description
with a value unique to the run; an update is lost when the simulator does not hold that
value afterwards. Every update carries the fact sheet's known rev, so (b) makes one
request per update; writeback.py passes no rev, which adds a read per update to (b) and
one per 25 to (a): twice the requests for both, the same ratio. (b) runs 32 at a time,
as the worker's prefetch would. Targets: no 429 after the first, nothing lost, and (a)
at least 10x faster per update.

(c) runs `writeback_workers` (3) workers at once, each its own client, HTTP session and
store connections (the store: a fresh PostgreSQL database, else an SQLite file), each
doing (b) on its own fact sheets with the same API token, paced by the shared limit in
the store. The simulator notes when each GraphQL request arrives; the combined rate is
the requests beyond the first (the burst of 1) over the time from the start to the last
arrival. Targets: no 429,
the combined rate at or below the limit, at most limit + 1 (the burst) in any second. (d)
is the same with each worker's own limit, as before the shared one: no target. The
workers are tasks of this process, apart in everything the limit depends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass

import aiohttp
import asyncpg
from aiohttp import web

from service.clients.leanix import LeanixClient
from service.clients.leanix_graphql import Patch, Update
from service.resources import leanix_pace
from service.settings import LeanixApi
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.store import Database
from tests.benchmarks.config import RUN_ID, Plan
from tests.benchmarks.report import Row, Section
from tests.benchmarks.stats import ratio

SPEEDUP_TARGET = 10.0
CONCURRENCY = 32  # worker.prefetch
Strategy = Callable[[LeanixClient, Mapping[str, str]], Awaitable[int]]


@dataclass(frozen=True)
class Outcome:
    strategy: str
    updates: int
    wall_s: float
    graphql_requests: int
    rate_limited: int
    failed: int
    lost: int

    @property
    def per_update_ms(self) -> float:
        return 1000 * self.wall_s / self.updates


def _patch(text: str) -> list[Patch]:
    return [Patch("replace", "/description", text)]


async def batched(client: LeanixClient, wanted: Mapping[str, str]) -> int:
    """(a) update_many; return how many results were not ok."""
    updates = [Update(id, _patch(text), rev=0) for id, text in wanted.items()]
    return sum(not result.ok for result in await client.update_many(updates))


async def one_by_one(client: LeanixClient, wanted: Mapping[str, str]) -> int:
    """(b) one update_fact_sheet per update, CONCURRENCY at once; return how many raised."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def update(id: str, text: str) -> None:
        async with gate:
            await client.update_fact_sheet(id, _patch(text), rev=0)

    outcomes = await asyncio.gather(
        *(update(id, text) for id, text in wanted.items()), return_exceptions=True
    )
    return sum(isinstance(o, BaseException) for o in outcomes)


async def measure(plan: Plan, name: str, strategy: Strategy, count: int) -> Outcome:
    """Run `count` updates with `strategy` against a fresh simulator."""
    sim = LeanixSimulator(rate_limit_rps=plan.writeback_rps)
    marker = secrets.token_hex(4)
    wanted = {sim.add_fact_sheet(name=f"bench {n}"): f"bench {marker} {n}" for n in range(count)}
    async with sim.serve() as url, aiohttp.ClientSession() as session:
        api = LeanixApi(
            base_url=url, api_token=DEFAULT_API_TOKEN, rate_limit_rps=plan.writeback_rps
        )
        client = LeanixClient(session, api)
        await client.authenticate()
        started = time.perf_counter()
        failed = await strategy(client, wanted)
        wall_s = time.perf_counter() - started
    lost = sum(sim.fact_sheets[id].description != text for id, text in wanted.items())
    requests = sim.requests
    return Outcome(
        name, count, round(wall_s, 3), requests["graphql"], requests["rate_limited"], failed, lost
    )


@dataclass(frozen=True)
class Fleet:
    """(c) or (d): several workers as one LeanIX user."""

    limit: str  # "shared" or "per worker"
    store: str
    workers: int
    updates: int
    wall_s: float
    requests: int  # GraphQL requests that reached the simulator, 429s included
    rate_limited: int
    combined_rps: float  # requests beyond the burst of 1, over the time from start to last
    most_in_a_second: int
    failed: int
    lost: int


class ClockedLeanix(LeanixSimulator):
    """The LeanIX simulator, noting when each GraphQL request arrives."""

    def __init__(self, rate_limit_rps: float) -> None:
        super().__init__(rate_limit_rps=rate_limit_rps)
        self.arrivals: list[float] = []

    async def _graphql(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        return await super()._graphql(request)


def most_in_window(times: list[float], window_s: float) -> int:
    """The most of `times` (sorted) in any window of `window_s` seconds."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


@contextlib.asynccontextmanager
async def store_url() -> AsyncIterator[tuple[str, str]]:
    """A fresh PostgreSQL database for the workers' store, else an SQLite file."""
    from tests.conftest import postgres_database

    async with contextlib.AsyncExitStack() as stack:
        try:
            database = postgres_database(f"bench-{RUN_ID}-writeback")
            url, store = await stack.enter_async_context(database), "PostgreSQL"
        except (OSError, asyncpg.PostgresError):  # no PostgreSQL here
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            url, store = f"sqlite+aiosqlite:///{folder}/bench.sqlite3", "SQLite"
        yield url, store


async def fleet(plan: Plan, shared: bool, url: str, store: str) -> Fleet:
    """`writeback_workers` workers doing (b) at once, each on its own fact sheets."""
    sim = ClockedLeanix(plan.writeback_rps)
    marker, count = secrets.token_hex(4), plan.writeback_worker_updates
    wanted = [
        {sim.add_fact_sheet(name=f"w{w} {n}"): f"bench {marker} {w} {n}" for n in range(count)}
        for w in range(plan.writeback_workers)
    ]
    async with contextlib.AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(sim.serve())
        api = LeanixApi(
            base_url=base_url,
            api_token=DEFAULT_API_TOKEN,
            rate_limit_rps=plan.writeback_rps,
            rate_limit_shared=shared,
        )
        clients = [await _worker(api, url, stack) for _ in wanted]
        sim.arrivals.clear()
        started, opened = time.perf_counter(), time.monotonic()
        work = (one_by_one(client, w) for client, w in zip(clients, wanted, strict=True))
        failed = await asyncio.gather(*work)
        wall_s = time.perf_counter() - started
    lost = sum(sim.fact_sheets[id].description != text for w in wanted for id, text in w.items())
    times = sorted(sim.arrivals)
    span = times[-1] - opened if times else float("nan")
    return Fleet(
        "shared" if shared else "per worker", store, len(wanted), count * len(wanted),
        round(wall_s, 3), len(times), sim.requests["rate_limited"],
        round((len(times) - 1) / span, 2), most_in_window(times, 1.0), sum(failed), lost,
    )  # fmt: skip


async def _worker(api: LeanixApi, url: str, stack: contextlib.AsyncExitStack) -> LeanixClient:
    """One worker: its own store connections, HTTP session and client, authenticated."""
    database = Database(url)
    stack.push_async_callback(database.close)
    await database.open()
    session = await stack.enter_async_context(aiohttp.ClientSession())
    client = LeanixClient(session, api, limiter=leanix_pace(api, database))
    await client.authenticate()
    return client


async def run(plan: Plan) -> Section:
    many = await measure(plan, "update_many", batched, plan.writeback_updates)
    single = await measure(plan, "update_fact_sheet", one_by_one, plan.writeback_single_updates)
    async with store_url() as (url, store):
        together = await fleet(plan, True, url, store)
        apart = await fleet(plan, False, url, store)
    speedup = ratio(single.per_update_ms, many.per_update_ms)
    rows = [
        *_rows("(a) update_many", many),
        *_rows("(b) update_fact_sheet", single),
        Row(
            "speed-up per update (b)/(a)",
            f"{speedup:.1f}x",
            f">= {SPEEDUP_TARGET:g}x",
            speedup >= SPEEDUP_TARGET,
        ),
        *_fleet_rows("(c)", together, plan.writeback_rps, targets=True),
        *_fleet_rows("(d)", apart, plan.writeback_rps, targets=False),
    ]
    data = {"update_many": asdict(many), "update_fact_sheet": asdict(single), "speedup": speedup}
    data |= {"workers_shared_limit": asdict(together), "workers_own_limits": asdict(apart)}
    data["rate_limit_rps"] = plan.writeback_rps
    return Section("writeback", rows, data)


def _rows(name: str, o: Outcome) -> list[Row]:
    return [
        Row(f"{name}: {o.updates} updates", f"{o.wall_s:.2f} s ({o.per_update_ms:.1f} ms each)"),
        Row(f"{name}: requests / failed", f"{o.graphql_requests} / {o.failed}"),
        Row(f"{name}: 429s", str(o.rate_limited), "<= 1", o.rate_limited <= 1),
        Row(f"{name}: updates lost", str(o.lost), "0", o.lost == 0),
    ]


def _fleet_rows(name: str, o: Fleet, limit: float, targets: bool) -> list[Row]:
    label = f"{name} {o.workers} workers, one user, {o.limit} limit"

    def target(text: str, met: bool) -> tuple[str, bool | None]:
        return (text, met) if targets else ("", None)

    return [
        Row(f"{label}: {o.updates} updates", f"{o.wall_s:.2f} s (store: {o.store})"),
        Row(f"{label}: requests / failed / lost", f"{o.requests} / {o.failed} / {o.lost}"),
        Row(f"{label}: 429s", str(o.rate_limited), *target("0", o.rate_limited == 0)),
        Row(
            f"{label}: combined rate",
            f"{o.combined_rps:.2f}/s",
            *target(f"<= {limit:g}/s", o.combined_rps <= limit),
        ),
        Row(
            f"{label}: most requests in 1 s",
            str(o.most_in_a_second),
            *target(f"<= {limit + 1:g}", o.most_in_a_second <= limit + 1),
        ),
    ]
