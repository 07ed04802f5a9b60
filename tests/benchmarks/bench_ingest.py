"""Ingest: our receiver against a naive one, on the same broker, under the same load.

Each receiver runs in its own process and gets the same closed-loop load from a load
generator's process: 64 connections posting signed LeanIX events, a warm-up, then the
measured window. The load comes from wrk when it is installed (wrkload.py: a fraction of
the CPU the Python generator takes from the server and the broker on a small machine),
else from loadgen.py; the "load generator" row says which. Counted: 202s (each one a
persistent message the broker confirmed) per second, and their latency. The order is
ours, baseline, then (full runs) baseline, ours, so a drift of the shared machine weighs
on both alike; the rounds are pooled.
Target: ours >= 1.3x the baseline's events/s, with a p99 no worse.

"ours" is the receiver as deployed on this machine: `plan.processes` receiver processes
on one port (http.processes, default one per CPU here; service/processes.py). With more
than one, "ours, 1 process" runs too (once per round pair, after them) and its own ratio
is reported beside, so the gain of the code and the gain of the processes show apart.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmarks import bus, meters, procs, wrkload
from tests.benchmarks.config import Plan, new_prefix
from tests.benchmarks.report import Row, Section
from tests.benchmarks.stats import latency_ms, p50_p99, ratio, worst_round

THROUGHPUT_TARGET = 1.3
POOLING = "wrk: count, mean, max exact; p50/p90/p99 the worst round's (an upper bound)"


@dataclass
class Leg:
    """A receiver under load, one round or several pooled: what the load generator saw
    and what the server cost.

    Its latency comes from the samples (`latencies_s`, the Python load generator's), or,
    from wrk, which gives percentiles and no samples, from each round's summary
    (`latency_rounds`); pooled, those count as the worst round's (stats.worst_round).
    """

    role: str
    duration_s: float
    statuses: dict[str, int]
    latencies_s: list[float]
    cpu: dict[str, float]  # per process: % of one core; machine_busy: % of all cores
    rss_mb: list[float]  # summed over the receiver's processes
    pss_mb: list[float] = field(default_factory=list)  # likewise, shared pages split
    processes: int = 1
    loop: str = ""
    idle_before: dict[str, float] | None = None
    idle_after: dict[str, float] | None = None
    leftover: list[str] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)  # events/s of each round
    latency_rounds: list[dict[str, float]] = field(default_factory=list)  # wrk's, per round
    generator: str = ""  # the load generator, e.g. "wrk 4.1.0, 1 thread, 64 connections"

    @property
    def rate(self) -> float:
        return ratio(self.statuses.get("202", 0), self.duration_s)

    @property
    def latency(self) -> dict[str, float]:
        if self.latency_rounds:
            return worst_round(self.latency_rounds)
        return latency_ms(self.latencies_s)

    @property
    def cpu_ms_per_event(self) -> float:
        """The server's CPU time per accepted event."""
        return ratio(10 * self.cpu["server_percent"], self.rate)

    @classmethod
    def loaded(cls, role: str, loop: str, load: dict[str, Any], **measured: Any) -> Leg:
        """One round from the load generator's result (closed_load's) and the meters."""
        samples = load.get("latencies_s")
        return cls(
            role=role,
            duration_s=load["duration_s"],
            statuses=load["statuses"],
            latencies_s=samples or [],
            loop=loop,
            latency_rounds=[load["latency"]] if samples is None else [],
            generator=load["generator"],
            **measured,
        )

    @classmethod
    def pooled(cls, legs: list[Leg]) -> Leg:
        """The rounds of one receiver as one leg: counts summed, samples joined (or, from
        wrk, each round's latency summary kept)."""
        statuses: Counter[str] = Counter()
        for leg in legs:
            statuses.update(leg.statuses)
        keys = legs[0].cpu.keys()
        return cls(
            role=legs[0].role,
            duration_s=sum(leg.duration_s for leg in legs),
            statuses=dict(statuses),
            latencies_s=[s for leg in legs for s in leg.latencies_s],
            cpu={k: round(sum(leg.cpu[k] for leg in legs) / len(legs), 1) for k in keys},
            rss_mb=[s for leg in legs for s in leg.rss_mb],
            pss_mb=[s for leg in legs for s in leg.pss_mb],
            processes=legs[0].processes,
            loop="/".join(sorted({leg.loop for leg in legs})),
            idle_before=next((leg.idle_before for leg in legs if leg.idle_before), None),
            idle_after=next((leg.idle_after for leg in legs if leg.idle_after), None),
            leftover=[name for leg in legs for name in leg.leftover],
            rounds=[round(leg.rate, 1) for leg in legs],
            latency_rounds=[s for leg in legs for s in leg.latency_rounds],
            generator="/".join(sorted({leg.generator for leg in legs})),
        )

    def json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "event_loop": self.loop,
            "events_per_s": round(self.rate, 1),
            "events_per_s_by_round": self.rounds,
            "measured_s": self.duration_s,
            "statuses": self.statuses,
            "load_generator": self.generator,
            "latency": self.latency,
            "latency_by_round": self.latency_rounds,  # wrk: each round's; empty: from samples
            "cpu": self.cpu,
            "server_cpu_ms_per_event": round(self.cpu_ms_per_event, 4),
            "processes": self.processes,
            "rss_mb": {"max": max(self.rss_mb, default=0.0), "samples": self.rss_mb},
            "pss_mb": {"max": max(self.pss_mb, default=0.0), "samples": self.pss_mb},
            "idle_before": self.idle_before,
            "idle_after": self.idle_after,
            "leftover_names": self.leftover,
        }


def load_config(plan: Plan, url: str) -> dict[str, Any]:
    return {
        "url": f"{url}/webhooks/leanix",
        "mode": "closed",
        "connections": plan.connections,
        "warmup_s": plan.warmup_s,
        "duration_s": plan.ingest_s,
    }


SINGLE = "ours-1"  # our receiver in one process


async def run_leg(
    plan: Plan, role: str, *, idle_s: float = 0.0, profile: Path | None = None
) -> Leg:
    """Start the receiver, optionally measure it idle, drive it, and clean up its names.

    `role`: "ours" (plan.processes processes), SINGLE (ours, one process), "baseline".
    A profiled run is always one process (the profiler samples one)."""
    prefix = new_prefix(role)
    loop = plan.baseline_loop if role == "baseline" else "service"
    extra = ("--loop", loop, *(("--profile", str(profile)) if profile else ()))
    label = f"ingest-{role}" + ("-profiled" if profile else "")
    count = plan.processes if role == "ours" and profile is None else 1
    serve_role = "ours" if role == SINGLE else role
    try:
        async with procs.server(serve_role, prefix, label, *extra, processes=count) as server:
            server.role = role
            idle_before = await meters.idle_cpu(server.pid, idle_s) if idle_s else None
            leg = await drive(plan, server, profiled=profile is not None)
            leg.idle_before = idle_before
            leg.idle_after = await meters.idle_cpu(server.pid, idle_s) if idle_s else None
    finally:
        leftover = await bus.delete(prefix)
    leg.leftover = leftover
    return leg


async def run_rounds(plan: Plan, idle_s: float) -> tuple[Leg, Leg, Leg | None]:
    """Ours and the baseline, alternating (the first run of ours also measures idle CPU),
    then ours in one process when ours runs several; pooled per role."""
    order = ["ours", "baseline", "baseline", "ours"][: 2 * max(1, plan.rounds)]
    if plan.processes > 1:
        order += [SINGLE] * max(1, plan.rounds // 2)
    legs: dict[str, list[Leg]] = {"ours": [], "baseline": [], SINGLE: []}
    for n, role in enumerate(order):
        idle = idle_s if n == 0 else 0.0
        legs[role].append(await run_leg(plan, role, idle_s=idle))
    single = Leg.pooled(legs[SINGLE]) if legs[SINGLE] else None
    return Leg.pooled(legs["ours"]), Leg.pooled(legs["baseline"]), single


async def closed_load(plan: Plan, url: str, on_warm: Callable[[], None]) -> dict[str, Any]:
    """The closed-loop load, from wrk when it is installed, else from loadgen.py.

    Either way: generator, duration_s, statuses and loadgen_cpu_percent; then wrk's latency
    summary ("latency") or loadgen.py's samples ("latencies_s"). wrk is chosen (or not)
    once per run, so every round of a comparison has the same load generator.
    """
    if wrkload.available():
        target = wrkload.Target(
            f"{url}/webhooks/leanix", plan.connections, plan.warmup_s, plan.ingest_s
        )
        return await wrkload.run(target, on_warm=on_warm)
    load = await procs.loadgen(load_config(plan, url), on_warm=on_warm)
    generator = f"loadgen.py (aiohttp), {plan.connections} connections; {wrkload.why_not()}"
    keep = ("statuses", "latencies_s", "loadgen_cpu_percent")
    return {k: load[k] for k in keep} | {"generator": generator, "duration_s": plan.ingest_s}


async def drive(plan: Plan, server: procs.Server, profiled: bool = False) -> Leg:
    """Run the load generator against `server`, sampling its RSS and CPU meanwhile."""
    meter = meters.CpuMeter(meters.watched(server=server.pid))

    def warm() -> None:
        meter.start()
        if profiled:
            server.process.send_signal(signal.SIGUSR1)

    async with meters.RssSampler(server.pid) as rss:
        load = await closed_load(plan, server.url, on_warm=warm)
    cpu = meter.stop() | {"loadgen_percent": load["loadgen_cpu_percent"]}
    rss_mb = [round(s, 1) for s in rss.samples]
    pss_mb = [round(s, 1) for s in rss.pss_samples]
    processes = int(server.info.get("processes", 1))
    return Leg.loaded(
        server.role, server.loop, load, cpu=cpu, rss_mb=rss_mb, pss_mb=pss_mb, processes=processes
    )


def section(ours: Leg, naive: Leg, single: Leg | None = None, processes: int = 1) -> Section:
    """The rows: the receivers' rates and latencies, and the two targets."""
    speedup = ratio(ours.rate, naive.rate)
    p99_ratio = ratio(ours.latency["p99_ms"], naive.latency["p99_ms"])
    rows = [
        Row("load generator", ours.generator),
        Row("ours: receiver processes", str(processes)),
        *_leg_rows("ours", ours),
        *_leg_rows("baseline", naive),
        *(_single_rows(single, naive) if single is not None else []),
        Row(
            "throughput ours / baseline",
            f"{speedup:.2f}x",
            f">= {THROUGHPUT_TARGET}x",
            speedup >= THROUGHPUT_TARGET,
        ),
        Row("p99 ours / baseline", f"{p99_ratio:.2f}x", "<= 1.00x", p99_ratio <= 1.0),
        leftover_row([*ours.leftover, *naive.leftover, *(single.leftover if single else [])]),
    ]
    data = {
        "ours": ours.json() | {"processes": processes},
        "baseline": naive.json(),
        "ours_one_process": single.json() if single is not None else None,
        "throughput_ratio": speedup,
        "p99_ratio": p99_ratio,
        "load_generator": ours.generator,
        "latency_pooling": POOLING if ours.latency_rounds else "the rounds' samples, joined",
        "others_percent": max(meters.others_percent(ours.cpu), meters.others_percent(naive.cpu)),
    }
    return Section("ingest", rows, data)


def _single_rows(single: Leg, naive: Leg) -> list[Row]:
    """Ours in one process: what the code alone does against the baseline (no target)."""
    latency = single.latency
    return [
        Row("ours, 1 process: events/s", f"{single.rate:.0f}"),
        Row("ours, 1 process: 202 p50 / p99", p50_p99(latency)),
        Row("ours, 1 process: server CPU per event", f"{single.cpu_ms_per_event:.3f} ms"),
        Row("ours, 1 process / baseline", f"{ratio(single.rate, naive.rate):.2f}x"),
    ]


def leftover_row(names: list[str]) -> Row:
    """Whether the exchanges and queues the benchmark declared are all gone."""
    return Row("exchanges/queues left over", str(len(names)), "0", not names)


def _leg_rows(name: str, leg: Leg) -> list[Row]:
    latency = leg.latency
    others = {k: v for k, v in leg.statuses.items() if k != "202"}
    rounds = (
        f" (rounds: {', '.join(f'{r:.0f}' for r in leg.rounds)})" if len(leg.rounds) > 1 else ""
    )
    return [
        Row(f"{name}: event loop", leg.loop),
        Row(f"{name}: events/s (202, confirmed)", f"{leg.rate:.0f}{rounds}"),
        Row(f"{name}: 202 p50 / p99", p50_p99(latency)),
        Row(f"{name}: non-202 answers", f"{sum(others.values())}{f' {others}' if others else ''}"),
        Row(f"{name}: server CPU per event", f"{leg.cpu_ms_per_event:.3f} ms"),
        Row(f"{name}: CPU, % of one core", meters.cpu_text(leg.cpu)),
    ]
