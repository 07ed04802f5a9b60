"""LeanIX write-back: update_many against one update_fact_sheet per request.

Both go through LeanixClient to a LeanixSimulator served in this process, which answers
429 beyond `rate_limit_rps` (30/s). Each update replaces one fact sheet's description
with a value unique to the run; an update is lost when the simulator does not hold that
value afterwards. Every update carries the fact sheet's known rev, so (b) makes one
request per update; writeback.py passes no rev, which adds a read per update to (b) and
one per 25 to (a): twice the requests for both, the same ratio. (b) runs 32 at a time,
as the worker's prefetch would. Targets: no 429 after the first, nothing lost, and (a)
at least 10x faster per update.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass

import aiohttp

from service.clients.leanix import LeanixClient
from service.clients.leanix_graphql import Patch, Update
from service.settings import LeanixApi
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from tests.benchmarks.config import Plan
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


async def run(plan: Plan) -> Section:
    many = await measure(plan, "update_many", batched, plan.writeback_updates)
    single = await measure(plan, "update_fact_sheet", one_by_one, plan.writeback_single_updates)
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
    ]
    data = {"update_many": asdict(many), "update_fact_sheet": asdict(single), "speedup": speedup}
    data["rate_limit_rps"] = plan.writeback_rps
    return Section("writeback", rows, data)


def _rows(name: str, o: Outcome) -> list[Row]:
    return [
        Row(f"{name}: {o.updates} updates", f"{o.wall_s:.2f} s ({o.per_update_ms:.1f} ms each)"),
        Row(f"{name}: requests / failed", f"{o.graphql_requests} / {o.failed}"),
        Row(f"{name}: 429s", str(o.rate_limited), "<= 1", o.rate_limited <= 1),
        Row(f"{name}: updates lost", str(o.lost), "0", o.lost == 0),
    ]
