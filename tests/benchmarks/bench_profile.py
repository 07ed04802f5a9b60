"""Profile: where our receiver's time goes under the ingest load, per pyinstrument.

The receiver runs the ingest benchmark once more with pyinstrument sampling its main
thread (every 1 ms, wall clock, the event loop's idle time included) from the end of the
warm-up to the stop. bench-results/profile-ingest.txt gets the self time per function,
then the call tree. Skipped when pyinstrument is not installed.
"""

from __future__ import annotations

import importlib.util
import re

from tests.benchmarks.bench_ingest import leftover_row, run_leg
from tests.benchmarks.config import RESULTS, Plan
from tests.benchmarks.report import Row, Section

PROFILE = RESULTS / "profile-ingest.txt"
TOP_SELF = 5
TOP_OURS = 8
_FLAT_LINE = re.compile(r"^\s*([\d.]+)\s+(\S.*)$")
_TREE_LINE = re.compile(r"([\d.]+)%\s+(\S+)\s+(service/\S+)")


async def run(plan: Plan) -> Section:
    if importlib.util.find_spec("pyinstrument") is None:
        hint = "pyinstrument is not installed (make bench installs it)"
        return Section("profile", [Row("skipped", hint)])
    PROFILE.unlink(missing_ok=True)
    leg = await run_leg(plan, "ours", profile=PROFILE)
    if not PROFILE.exists():
        return Section("profile", [], error="the receiver wrote no profile")
    text = PROFILE.read_text()
    top, ours = top_self_time(text), our_functions(text)
    rows = [
        Row("ours, profiled: events/s", f"{leg.rate:.0f}"),
        Row("profile", str(PROFILE.relative_to(RESULTS.parent))),
        *(Row(f"self time (s) #{n}", line) for n, line in enumerate(top, 1)),
        *(Row(f"service/ incl. time #{n}", line) for n, line in enumerate(ours, 1)),
        leftover_row(leg.leftover),
    ]
    data = {"leg": leg.json(), "top_self_time": top, "service_inclusive": ours}
    return Section("profile", rows, data)


def top_self_time(text: str, count: int = TOP_SELF) -> list[str]:
    """The first lines of the flat view: seconds of self time, function, place."""
    flat = text.split("=== call tree ===")[0]
    lines = [m.group(0).strip() for m in map(_FLAT_LINE.match, flat.splitlines()) if m]
    return [" ".join(line.split()) for line in lines[:count]]


def our_functions(text: str, count: int = TOP_OURS) -> list[str]:
    """The service's own functions in the call tree, by share of the loop's time
    (inclusive of what they call), each at its first appearance."""
    tree = text.split("=== call tree ===")[-1]
    seen: dict[str, tuple[float, str]] = {}
    for percent, name, place in _TREE_LINE.findall(tree):
        if name != "[self]":
            seen.setdefault(name, (float(percent), f"{percent}% {name} {place}"))
    ranked = sorted(seen.values(), key=lambda item: -item[0])
    return [line for _, line in ranked[:count]]
