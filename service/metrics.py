"""Metrics: Prometheus counters, histograms and gauges, served at /metrics.

Names start with `bridge_`. Labels are bounded sets (source, status, handler, vendor,
outcome), never ids. Queue depth and runs in flight are read when scraped.

With several receiver processes (service/processes.py) prometheus_client keeps each
process's values in files of a shared directory and a scrape, whichever process answers
it, sums them; a gauge read on scrape shows the most recent reading.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

requests = Counter(
    "bridge_requests_total", "HTTP requests by source and status", ["source", "status"]
)
publish_seconds = Histogram(
    "bridge_publish_confirm_seconds",
    "Time from publish to the broker's confirm",
    buckets=LATENCY_BUCKETS,
)
handled = Counter(
    "bridge_events_handled_total",
    "Handler runs by handler and outcome (ok, retry, dead_letter)",
    ["handler", "outcome"],
)
unhandled = Counter("bridge_events_unhandled_total", "Events no handler matched")
retries = Counter("bridge_retries_total", "Events scheduled for another attempt")
dead_letters = Counter("bridge_dead_letters_total", "Events sent to the dead-letter queue")
vendor_seconds = Histogram(
    "bridge_vendor_call_seconds",
    "Vendor API call latency by vendor and outcome (ok, unavailable, rejected)",
    ["vendor", "outcome"],
    buckets=LATENCY_BUCKETS,
)
queue_depth = Gauge(
    "bridge_queue_depth", "Messages ready in a queue", ["queue"], multiprocess_mode="mostrecent"
)
reconcile_runs = Counter(
    "bridge_reconcile_runs_total",
    "Scheduled reconciliations this replica ran (it held the lease), by outcome (ok, failed)",
    ["outcome"],
)
reconciled_events = Counter(
    "bridge_reconciled_events_total",
    "leanix.factsheet.reconciled events published by scheduled reconciliations",
    ["workspace"],
)
runs_in_flight = Gauge(
    "bridge_runs_in_flight",
    "Automation runs started and not finished",
    ["vendor"],
    multiprocess_mode="mostrecent",
)


def shared() -> bool:
    """Whether values live in the multiprocess directory (several receiver processes)."""
    return values.ValueClass is not values.MutexValue


def render() -> tuple[bytes, str]:
    """The exposition text and its content type: of every process when they are several."""
    if not shared():
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
