"""Metrics outbox: points for LeanIX's Metrics API, posted in the background.

A finished run adds its point here and moves on: the write-back never waits for the
Metrics API and never fails because of it. Every `flush_interval_s` the outbox posts what
it holds, one request per point (the v1 API takes one point per POST; no batch endpoint is
documented), each paced by its client's LeanIX rate limiter like every other LeanIX call.

    posted                                  -> gone
    5xx, timeout, 429 past the client's     -> kept for the next flush, `attempts` posts
      own waiting (VendorUnavailable)          in all, then dropped with a log line
    another 4xx (VendorRejected)            -> dropped at once with a log line: the same
                                               point would be refused again
    more than `max_pending` held            -> the oldest dropped with a log line

Metrics are best effort: points held in memory are lost with the process (at shutdown
one last flush is tried, within `flush_interval_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from service.errors import VendorRejected, VendorUnavailable
from service.settings import LeanixMetrics

log = structlog.get_logger("service.clients.leanix_metrics")


class MetricsSink(Protocol):
    """Where points go: a LeanIX client (service/clients/leanix.py)."""

    async def post_metric(self, point: Mapping[str, Any]) -> None: ...


@dataclass
class _Pending:
    sink: MetricsSink
    point: Mapping[str, Any]
    posts: int = 0


def point(
    measurement: str, time: str, tags: Mapping[str, Any], fields: Mapping[str, float]
) -> dict[str, Any]:
    """A v1 point: tags [{k, v}] as strings (absent values left out), number fields [{k, v}]."""
    return {
        "measurement": measurement,
        "time": time,
        "tags": [{"k": k, "v": str(v)} for k, v in tags.items() if v is not None and v != ""],
        "fields": [{"k": k, "v": float(v)} for k, v in fields.items()],
    }


class MetricsOutbox:
    """Points waiting to be posted, and the loop that posts them."""

    def __init__(self, settings: LeanixMetrics) -> None:
        self.settings = settings
        self._pending: deque[_Pending] = deque()
        self.posted = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, sink: MetricsSink, point: Mapping[str, Any]) -> None:
        """Hold a point for the next flush; never blocks, never raises."""
        self._pending.append(_Pending(sink, point))
        if len(self._pending) > self.settings.max_pending:
            self._drop(self._pending.popleft(), "more points waiting than max_pending")

    async def run(self, halt: asyncio.Event) -> None:
        """Flush every `flush_interval_s` until `halt`, then once more within that time."""
        while not halt.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.flush_interval_s):
                    await halt.wait()
            await self._flush_safely()
        await self.close()

    async def close(self) -> None:
        """The last flush, bounded; what is left after it is dropped with a log line."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.flush_interval_s):
                await self.flush()
        self.abandon()

    def abandon(self) -> None:
        """Drop every point held, with one log line (the process is stopping)."""
        if self._pending:
            log.warning("leanix.metrics.dropped", count=len(self._pending), reason="shutdown")
            self.dropped += len(self._pending)
            self._pending.clear()

    async def flush(self) -> int:
        """Post every point held now, one request each; return how many were posted."""
        posted = 0
        for _ in range(len(self._pending)):
            if not self._pending:
                break
            pending = self._pending.popleft()
            posted += await self._post(pending)
        return posted

    async def _flush_safely(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # a bad round must not end the flushing for good
            log.error("leanix.metrics.flush_failed", error=repr(exc))

    async def _post(self, pending: _Pending) -> int:
        pending.posts += 1
        try:
            await pending.sink.post_metric(pending.point)
        except VendorUnavailable as exc:
            if pending.posts < self.settings.attempts:
                self._pending.append(pending)  # tried again at the next flush
                log.info("leanix.metrics.retry_later", posts=pending.posts, error=str(exc))
            else:
                self._drop(pending, f"still failing after {pending.posts} posts: {exc}")
            return 0
        except VendorRejected as exc:
            self._drop(pending, f"refused: {exc}")
            return 0
        self.posted += 1
        return 1

    def _drop(self, pending: _Pending, reason: str) -> None:
        self.dropped += 1
        log.warning(
            "leanix.metrics.dropped", count=1, reason=reason, measurement=_name(pending.point)
        )


def _name(point: Mapping[str, Any]) -> str:
    return str(point.get("measurement", ""))
