"""python -m tests.benchmarks [--quick] [--only NAME[,NAME...]]: run, print the table, write JSON.

Benchmarks run one after the other, so they do not compete for the machine's cores:
ingest and footprint (they share the run of our receiver), profile, e2e, drain, writeback,
pull, prod (the production shape: bench_prod.py; alone: `python -m tests.benchmarks prod`).
The exit code is 0 when every benchmark ran, whether or not its targets were met, and
1 when one could not run (its error is in the table and the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

from service import logs
from service.settings import LogSettings
from tests.benchmarks import (
    bench_drain,
    bench_e2e,
    bench_footprint,
    bench_ingest,
    bench_prod,
    bench_profile,
    bench_pull,
    bench_writeback,
    bus,
    meters,
    report,
)
from tests.benchmarks.config import RESULTS, RUN_ID, Plan
from tests.benchmarks.procs import LOGS
from tests.benchmarks.report import Section

log = structlog.get_logger("tests.benchmarks")

QUIET_PERCENT = 20.0  # other processes' CPU, % of one core, beyond which numbers are suspect
BENCHMARKS = ("ingest", "footprint", "profile", "e2e", "drain", "writeback", "pull", "prod")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names", nargs="*", help="benchmarks to run (as --only; e.g. `prod --quick`)"
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated, of: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--baseline-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="the naive receiver's event loop (default asyncio, what a first attempt runs on)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="our receiver's processes (http.processes); default one per CPU, at most 4",
    )
    args = parser.parse_args(argv)
    chosen = ",".join(args.names) if args.names else args.only
    args.only = {name.strip() for name in chosen.split(",") if name.strip()}
    if unknown := args.only - set(BENCHMARKS):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def guarded(
    names: Iterable[str], run: Callable[[], Awaitable[list[Section]]]
) -> list[Section]:
    """Run benchmarks; an error becomes a section that says so, and the others still run."""
    names = list(names)
    progress(f"running {', '.join(names)}")
    try:
        return await run()
    except Exception as exc:
        log.exception("benchmark.failed", benchmarks=names)  # the traceback, in bench.log
        return [Section(name, error=f"{type(exc).__name__}: {exc}") for name in names]


async def ingest_and_footprint(plan: Plan, selected: set[str]) -> list[Section]:
    idle_s = plan.idle_s if "footprint" in selected else 0.0
    if "ingest" not in selected:
        return [bench_footprint.section(await bench_ingest.run_leg(plan, "ours", idle_s=idle_s))]
    ours, naive, single = await bench_ingest.run_rounds(plan, idle_s)
    sections = [bench_ingest.section(ours, naive, single, plan.processes)]
    if "footprint" in selected:
        sections.append(bench_footprint.section(ours))
    return sections


async def run_all(plan: Plan, selected: set[str]) -> list[Section]:
    sections: list[Section] = []
    first = [name for name in ("ingest", "footprint") if name in selected]
    if first:
        sections += await guarded(first, lambda: ingest_and_footprint(plan, selected))
    singles = {
        "profile": bench_profile.run,
        "e2e": bench_e2e.run,
        "drain": bench_drain.run,
        "writeback": bench_writeback.run,
        "pull": bench_pull.run,
        "prod": bench_prod.run,
    }
    for name, bench in singles.items():
        if name in selected:
            sections += await guarded([name], functools.partial(_one, bench, plan))
    return sections


async def _one(bench: Callable[[Plan], Awaitable[Section]], plan: Plan) -> list[Section]:
    return [await bench(plan)]


async def main_async(plan: Plan, selected: set[str]) -> int:
    started = time.perf_counter()
    stamp = report.timestamp()
    broker = await bus.broker_version()
    busy_before = await meters.machine_busy(1.0)
    if busy_before > QUIET_PERCENT:
        progress(f"the machine is busy before we start ({busy_before:.0f}% of a core)")
    sections = await run_all(plan, selected)
    print(report.table(sections))
    for note in report.interference(sections, QUIET_PERCENT):
        print(note)
    machine = report.machine(broker) | {"busy_before_percent": busy_before}
    path = RESULTS / f"bench-{stamp}.json"
    report.write_json(path, document(plan, stamp, started, machine, sections))
    root = RESULTS.parent
    print(f"\nresults: {path.relative_to(root)}; server logs: {LOGS.relative_to(root)}/")
    return 1 if any(s.error for s in sections) else 0


def document(
    plan: Plan, stamp: str, started: float, machine: dict[str, Any], sections: list[Section]
) -> dict[str, Any]:
    """Everything a run measured, with what it ran on."""
    return {
        "started_at": stamp,
        "run_id": RUN_ID,
        "mode": "quick" if plan.quick else "full",
        "plan": plan.__dict__,
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        "sections": {s.name: report.section_json(s) for s in sections},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / "bench.log").open("w") as log:  # the clients' own log lines, off the table
        logs.configure(LogSettings(level="warning", format="json"), stream=log)
        plan = Plan.make(args.quick, args.baseline_loop, args.processes)
        return asyncio.run(main_async(plan, args.only))


if __name__ == "__main__":
    sys.exit(main())
