"""Footprint: the receiver's memory under load and its CPU time while idle.

Derived from the ingest run of our receiver: memory sampled every 0.2 s while the load
runs, and utime+stime over an idle window before and after the load. Targets: memory
<= 150 MiB; idle CPU near zero, taken here as at most 1% of one core.

One process: its RSS (VmRSS) is judged. Several (forked receivers): RSS would count
every page they share since the fork once per process, so what is judged is their PSS
summed (each shared page split between its sharers: the memory they take together);
the RSS of each and their RSS sum (an upper bound) are shown beside it.
"""

from __future__ import annotations

from tests.benchmarks.bench_ingest import Leg
from tests.benchmarks.report import Row, Section

RSS_TARGET_MB = 150.0
IDLE_TARGET_PERCENT = 1.0


def section(ours: Leg) -> Section:
    rss = max(ours.rss_mb, default=0.0)
    target = f"<= {RSS_TARGET_MB:.0f} MiB"
    if ours.processes > 1 and ours.pss_mb:
        pss = max(ours.pss_mb)
        rows = [
            Row(f"receiver memory under load, PSS of its {ours.processes} processes, max",
                f"{pss:.1f} MiB", target, pss <= RSS_TARGET_MB),
            Row("receiver RSS under load, summed over its processes, max", f"{rss:.1f} MiB"),
        ]  # fmt: skip
    else:
        rows = [Row("receiver RSS under load, max", f"{rss:.1f} MiB", target, rss <= RSS_TARGET_MB)]
    for when, idle in (("before", ours.idle_before), ("after", ours.idle_after)):
        if idle is not None:
            rows.append(_idle_row(when, idle))
    data = {"ours": ours.json()}
    return Section("footprint", rows, data)


def _idle_row(when: str, idle: dict[str, float]) -> Row:
    value = f"{idle['cpu_s']:.2f} s CPU in {idle['window_s']:g} s ({idle['cpu_percent']:.1f}%)"
    target = f"<= {IDLE_TARGET_PERCENT:g}% of a core"
    return Row(
        f"receiver idle {when} the load", value, target, idle["cpu_percent"] <= IDLE_TARGET_PERCENT
    )
