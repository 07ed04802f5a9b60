"""Configuration of a benchmark run: durations, names, the broker and the settings tree.

Every process of a run gets names under its own random prefix, so nothing collides
with the tests or with a concurrent run, and every name is deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import settings_tree as tests_settings_tree

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
FIXTURE = ROOT / "tests" / "fixtures" / "leanix-factsheet-created.json"
AMQP_URL = os.environ.get(
    "BENCH_AMQP_URL", os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
)
RUN_ID = secrets.token_hex(4)
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Plan:
    """How long and how hard each benchmark runs; `--quick` shrinks everything."""

    quick: bool
    connections: int = 64
    warmup_s: float = 3.0
    ingest_s: float = 15.0
    rounds: int = 2  # ingest: ours, baseline, then baseline, ours (cancels a linear drift)
    baseline_loop: str = "asyncio"  # what a first attempt runs on; ours: the service's setting
    processes: int = 1  # our receiver's processes (http.processes); make() picks one per CPU
    idle_s: float = 5.0
    e2e_rate: float = 500.0
    e2e_warmup_s: float = 2.0
    e2e_s: float = 30.0
    drain_events: int = 20_000
    writeback_updates: int = 1000
    writeback_single_updates: int = 1000
    writeback_rps: float = 30.0
    writeback_workers: int = 3  # workers sharing one LeanIX user: (c) and (d)
    writeback_worker_updates: int = 200  # per worker
    prod_rounds: int = 2  # per publisher, alternating the order (the spread is reported)
    prod_s: float = 10.0  # each of prod's measured windows
    prod_backlog_s: float = 3.0  # prod: the receivers' saturation with no worker (the backlog)

    @classmethod
    def make(cls, quick: bool, baseline_loop: str = "asyncio", processes: int = 0) -> Plan:
        processes = processes or min(4, len(os.sched_getaffinity(0)))
        if not quick:
            return cls(quick=False, baseline_loop=baseline_loop, processes=processes)
        return cls(
            quick=True,
            baseline_loop=baseline_loop,
            processes=processes,
            warmup_s=1.0,
            ingest_s=3.0,
            rounds=1,
            idle_s=2.0,
            e2e_warmup_s=1.0,
            e2e_s=5.0,
            drain_events=3_000,
            writeback_single_updates=100,
            writeback_worker_updates=30,
            prod_rounds=1,
            prod_s=3.0,
            prod_backlog_s=1.0,
        )


def new_prefix(label: str) -> str:
    """Exchange and queue names unique to this run and this use."""
    return f"bench-{RUN_ID}-{label}-{secrets.token_hex(2)}"


def settings_tree(prefix: str, amqp_url: str = AMQP_URL) -> dict[str, Any]:
    """The service's settings for one benchmark: the tests' credentials, production defaults."""
    tree = tests_settings_tree(prefix, amqp_url)
    tree["http"] = {"host": "127.0.0.1", "port": 0}
    tree["log"] = {"format": "json", "level": "info"}
    return tree
