"""Drain: how fast one worker works off a backlog (after an outage, or a burst of events).

A backlog of persistent CloudEvents is published to the work queue first (confirmed),
then a worker starts: the service's Consumer with the recording handler (serve.py
worker), at its default prefetch. Measured from its first to its last handler start:
events/s, and the worker's CPU per event, which shows what consuming, dispatching and
acking cost. No target in the issue; a number to watch.
"""

from __future__ import annotations

import asyncio

import orjson

from service.bus.broker import Broker
from service.settings import from_mapping
from tests.benchmarks import bus, meters, procs
from tests.benchmarks.bench_e2e import handled
from tests.benchmarks.bench_ingest import leftover_row
from tests.benchmarks.config import Plan, new_prefix, settings_tree
from tests.benchmarks.report import Row, Section

PUBLISH_CHUNK = 1000
TYPE = "leanix.factsheet.updated"


async def run(plan: Plan) -> Section:
    prefix = new_prefix("drain")
    try:
        await backlog(prefix, plan.drain_events)
        async with procs.server("worker", prefix, "drain-worker") as worker:
            before = meters.cpu_s(worker.pid)
            seen, repeats = await handled(worker.url, plan.drain_events)
            cpu_s = meters.cpu_s(worker.pid) - before
    finally:
        leftover = await bus.delete(prefix)
    return section(plan, seen, repeats, cpu_s, leftover)


async def backlog(prefix: str, count: int) -> None:
    """Publish `count` events (confirmed, persistent) to the prefix's work queue."""
    broker = Broker(from_mapping(settings_tree(prefix)).amqp)
    await broker.start()
    try:
        await broker.wait_ready(30)
        for start in range(0, count, PUBLISH_CHUNK):
            ids = range(start, min(count, start + PUBLISH_CHUNK))
            await asyncio.gather(*(_publish(broker, f"drain-{n}") for n in ids))
    finally:
        await broker.close()


async def _publish(broker: Broker, event_id: str) -> None:
    body = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "bench", "type": TYPE,
         "time": "2026-01-01T00:00:00Z", "data": {"n": event_id}}
    )  # fmt: skip
    await broker.publish(body, routing_key=TYPE, message_id=event_id, timeout_s=30)


def section(
    plan: Plan, seen: dict[str, float], repeats: int, cpu_s: float, leftover: list[str]
) -> Section:
    starts = sorted(seen.values())
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    rate = (len(starts) - 1) / span if span > 0 else 0.0
    lost = plan.drain_events - len(seen)
    rows = [
        Row("backlog", f"{plan.drain_events} events"),
        Row("worker: events/s (first to last handler start)", f"{rate:.0f}"),
        Row("worker: CPU per event", f"{1000 * cpu_s / max(1, len(seen)):.3f} ms"),
        Row("events not handled / repeats", f"{lost} / {repeats}", "0", lost == 0),
        leftover_row(leftover),
    ]
    data = {
        "backlog": plan.drain_events,
        "handled": len(seen),
        "events_per_s": round(rate, 1),
        "span_s": round(span, 3),
        "worker_cpu_s": round(cpu_s, 3),
        "repeats": repeats,
        "leftover_names": leftover,
    }
    return Section("drain", rows, data)
