"""Reporting: each finished run as a point on LeanIX's Metrics API, for EA dashboards.

    measurement  clients.leanix.metrics.measurement ("automation_runs")
    tags         factSheetId, vendor, rule, outcome
    fields       duration (seconds from the run's recorded start to its completion)
    time         the completion

The point is handed to the metrics outbox (service/clients/leanix_metrics.py) of the
LeanIX client the run writes back through; posting happens in the background and never
touches the write-back. Without an outbox (metrics not enabled) nothing is reported.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from service.clients.leanix import LeanixClient
from service.clients.leanix_metrics import MetricsOutbox, point
from service.store.runs import Run


def run_point(run: Run, measurement: str) -> dict[str, object]:
    """The Metrics API point of a completed run."""
    finished = run.completed_at or time.time()
    tags = {
        "factSheetId": run.fact_sheet_id,
        "vendor": run.vendor,
        "rule": run.rule,
        "outcome": run.outcome or "unknown",
    }
    duration_s = max(0.0, finished - run.started_at)
    moment = datetime.fromtimestamp(finished, UTC).isoformat(timespec="milliseconds")
    return point(measurement, moment.replace("+00:00", "Z"), tags, {"duration": duration_s})


def report(run: Run, outbox: MetricsOutbox | None, client: LeanixClient | None) -> None:
    """Hand the run's point to the outbox, if metrics are enabled; never raises."""
    if outbox is None or client is None:
        return
    outbox.add(client, run_point(run, outbox.settings.measurement))
