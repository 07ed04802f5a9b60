"""Report: the rows of a run as a table on stdout, and every number as JSON.

A row says what was measured, its value, and, when the issue sets one, the target and
whether it was MET or MISSED. Missing a target is a result, not a failure.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.benchmarks.config import ROOT

PACKAGES = ("aiohttp", "aio-pika", "aiormq", "pamqp", "orjson", "structlog", "pyinstrument")


@dataclass(frozen=True)
class Row:
    metric: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target

    @property
    def status(self) -> str:
        return "" if self.met is None else ("MET" if self.met else "MISSED")


@dataclass
class Section:
    """One benchmark's outcome: its table rows and every number behind them."""

    name: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def table(sections: list[Section]) -> str:
    """The summary table, one line per row."""
    lines = [("benchmark", "metric", "value", "target", "status")]
    for section in sections:
        if section.error:
            lines.append((section.name, "ERROR", section.error[:60], "", "ERROR"))
        lines += [(section.name, r.metric, r.value, r.target, r.status) for r in section.rows]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(t.rstrip() for t in text)


def interference(sections: list[Section], limit_percent: float) -> list[str]:
    """A note for each benchmark during which other processes used much CPU."""
    notes = []
    for section in sections:
        others = section.data.get("others_percent")
        if others is not None and others > limit_percent:
            notes.append(
                f"note: other processes used {others:.0f}% of a core during {section.name}: "
                "its numbers are disturbed; rerun on a quiet machine"
            )
    return notes


def machine(broker_version: str | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in PACKAGES},
        "rabbitmq": broker_version,
        "git": _git(),
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(document), indent=2, default=str) + "\n")


def section_json(section: Section) -> dict[str, Any]:
    rows = [asdict(r) | {"status": r.status} for r in section.rows]
    return {"rows": rows, "data": section.data, "error": section.error}


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _finite(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": run("rev-parse", "HEAD"),
        "dirty_files": len(run("status", "--porcelain").splitlines()),
    }
