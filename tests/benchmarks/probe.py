"""The probe: the broker's own confirm latency, measured beside a benchmark.

A publisher of its own (the service's Broker, its own exchange and quorum queue) sends
one persistent message at a time at a low, fixed rate and times each confirm, while the
benchmark runs. When the service's latency has a tail, the probe tells whether RabbitMQ
had the same tail at the same moment: on a shared machine the broker's quorum-queue
writes stall now and then, which no client can hide.
"""

from __future__ import annotations

import asyncio
import time

from service.bus.broker import Broker
from service.bus.settings import AmqpSettings
from tests.benchmarks.bus import names

RATE = 50.0  # messages per second: light beside the measured load
TIMEOUT_S = 10.0


async def confirms(prefix: str, stop: asyncio.Event, measuring: asyncio.Event) -> list[float]:
    """Confirm latencies (s) from when `measuring` is set until `stop` is."""
    amqp: AmqpSettings = names(prefix).amqp
    broker = Broker(amqp)
    await broker.start()
    samples: list[float] = []
    try:
        await broker.wait_ready(TIMEOUT_S)
        start, sent = time.monotonic(), 0
        while not stop.is_set():
            began = time.perf_counter()
            await broker.publish(
                b"{}", routing_key="probe", message_id=f"probe-{sent}", timeout_s=TIMEOUT_S
            )
            if measuring.is_set():
                samples.append(time.perf_counter() - began)
            sent += 1
            pause = start + sent / RATE - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # the probe's own fixed rate
    finally:
        await broker.close()
    return samples
