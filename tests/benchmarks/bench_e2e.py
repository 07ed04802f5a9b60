"""End to end: a steady rate through our receiver and a worker, send -> handler start.

Two processes, as in production: the receiver (serve.py ours) and a worker (serve.py
worker: the service's Consumer, one recording handler). The load generator, a third
process, sends at a fixed rate whatever the answers do and notes each event's send time;
the handler notes perf_counter at its start. Both clocks are CLOCK_MONOTONIC. Targets:
p99 <= 25 ms, and every event answered 202 reached the handler.

Meanwhile probe.py times the broker's own confirms (50/s, a queue of its own): a tail
that the bare broker shows in the same window is RabbitMQ's, not the service's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from tests.benchmarks import bus, meters, probe, procs
from tests.benchmarks.bench_ingest import leftover_row
from tests.benchmarks.config import Plan, new_prefix
from tests.benchmarks.report import Row, Section
from tests.benchmarks.stats import latency_ms, p50_p99

P99_TARGET_MS = 25.0
DRAIN_TIMEOUT_S = 60.0
POLL_S = 0.1


async def run(plan: Plan) -> Section:
    _require_shared_clock()
    prefix, probe_prefix = new_prefix("e2e"), new_prefix("e2e-probe")
    stop, measuring = asyncio.Event(), asyncio.Event()
    try:
        async with (
            procs.server("ours", prefix, "e2e-receiver") as receiver,
            procs.server("worker", prefix, "e2e-worker") as worker,
        ):
            meter = meters.CpuMeter(meters.watched(receiver=receiver.pid, worker=worker.pid))
            probing = asyncio.create_task(probe.confirms(probe_prefix, stop, measuring))

            def warm() -> None:
                meter.start()
                measuring.set()

            load = await procs.loadgen(load_config(plan, receiver.url), on_warm=warm)
            stop.set()
            load["probe"] = latency_ms(await probing)
            cpu = meter.stop() | {"loadgen_percent": load["loadgen_cpu_percent"]}
            load["loops"] = {"receiver": receiver.loop, "worker": worker.loop}
            accepted = {r[0]: r for r in load["records"] if r[2] == 202}
            seen, repeats = await handled(worker.url, len(accepted))
    finally:
        stop.set()
        leftover = [*await bus.delete(prefix), *await bus.delete(probe_prefix)]
    load["cpu"] = cpu
    return section(plan, load, accepted, seen, repeats, leftover)


def load_config(plan: Plan, url: str) -> dict[str, Any]:
    return {
        "url": f"{url}/webhooks/leanix",
        "mode": "open",
        "connections": plan.connections,
        "warmup_s": plan.e2e_warmup_s,
        "duration_s": plan.e2e_s,
        "rate": plan.e2e_rate,
    }


async def handled(worker_url: str, expected: int) -> tuple[dict[str, float], int]:
    """Wait until the worker saw `expected` events or the deadline passed; return its notes."""
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            async with session.get(f"{worker_url}/count") as response:
                if (await response.json())["seen"] >= expected:
                    break
            await asyncio.sleep(POLL_S)  # polling with a deadline
        async with session.get(f"{worker_url}/seen") as response:
            notes = await response.json()
    return notes["seen"], notes["repeats"]


def section(
    plan: Plan,
    load: dict[str, Any],
    accepted: dict[str, list[Any]],
    seen: dict[str, float],
    repeats: int,
    leftover: list[str],
) -> Section:
    measured = [seen[i] - r[1] for i, r in accepted.items() if r[3] and i in seen]
    e2e = latency_ms(measured)
    lost = [i for i in accepted if i not in seen]
    lag = latency_ms([r[4] for r in load["records"] if r[3]])
    others = {k: v for k, v in load["statuses"].items() if k != "202"}
    rows = [
        Row("processes (event loop)", _processes(load["loops"])),
        Row("offered / accepted rate", f"{plan.e2e_rate:.0f} / {load['accepted_per_s']:.0f} per s"),
        Row("send -> 202 p50 / p99", p50_p99(load["latency"])),
        Row("send -> handler start p50 / p99", p50_p99(e2e)),
        Row(
            "send -> handler start p99",
            f"{e2e['p99_ms']:.1f} ms",
            f"<= {P99_TARGET_MS:g} ms",
            e2e["p99_ms"] <= P99_TARGET_MS,
        ),
        Row("lost events (202 but not handled)", f"{len(lost)} of {len(accepted)}", "0", not lost),
        Row("non-202 answers / repeats", f"{sum(others.values())} / {repeats}"),
        Row("loadgen lateness p99", f"{lag['p99_ms']:.1f} ms"),
        Row("broker alone, same window: confirm p50 / p99", p50_p99(load["probe"])),
        Row("CPU, % of one core", meters.cpu_text(load["cpu"])),
        leftover_row(leftover),
    ]
    data = {
        "config": load["config"],
        "event_loops": load["loops"],
        "accepted": len(accepted),
        "statuses": load["statuses"],
        "http_latency": load["latency"],
        "send_to_handler": e2e,
        "lost": len(lost),
        "lost_ids": lost[:100],
        "repeats": repeats,
        "loadgen_lateness": lag,
        "broker_alone_confirm": load["probe"],
        "cpu": load["cpu"],
        "others_percent": meters.others_percent(load["cpu"]),
        "leftover_names": leftover,
    }
    return Section("e2e", rows, data)


def _processes(loops: dict[str, str]) -> str:
    return f"receiver ({loops['receiver']}) + worker ({loops['worker']}); loadgen a 3rd"


def _require_shared_clock() -> None:
    clock = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC" not in clock:
        raise RuntimeError(f"perf_counter is {clock}: not comparable across processes")
