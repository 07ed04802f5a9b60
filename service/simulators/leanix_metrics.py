"""The LeanIX simulator's Metrics API (v1): `POST /services/metrics/v1/points`.

A point as LeanIX's metrics SDK builds it (../shared/contracts/leanix.json): a
`measurement`, string tags `[{k, v}]`, fields `[{k, v (number) or s (string)}]`, an
optional `time` and `workspaceId`. The answer's envelope ({status, type, data}) follows the
SDK's response model; what LeanIX puts in `data` is not published, so the point is echoed.
A point in the wrong shape gets 400. Faults of its own (`fail`, `latency_s`) break the
Metrics API alone, while GraphQL keeps working.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from service.simulators.base import json_response

METRICS_PATH = "/services/metrics/v1/points"


@dataclass
class MetricsApi:
    """What the Metrics API received, and the faults to answer its next points with."""

    points: list[dict[str, Any]] = field(default_factory=list)
    fail: list[int] = field(default_factory=list)  # a status per next point, e.g. 500, 429
    latency_s: float = 0.0
    retry_after_s: int = 1

    async def receive(self, request: web.Request, user_id: str) -> web.Response:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)  # injected latency, by design
        if self.fail:
            status = self.fail.pop(0)
            headers = {"Retry-After": str(self.retry_after_s)} if status == 429 else None
            return json_response({"status": "ERROR", "message": f"fault {status}"}, status, headers)
        try:
            point = await request.json()
        except ValueError:
            return json_response({"status": "ERROR", "message": "the body is not JSON"}, 400)
        problem = shape_problem(point)
        if problem:
            return json_response({"status": "ERROR", "message": problem}, 400)
        self.points.append({**point, "_user": user_id})
        return json_response({"status": "OK", "type": "Point", "data": point})


def shape_problem(point: Any) -> str | None:
    """What makes `point` no v1 point, or None."""
    if not isinstance(point, dict) or not isinstance(point.get("measurement"), str):
        return "a point needs a measurement"
    tags = point.get("tags", [])
    if not isinstance(tags, list) or not all(_pair(t, "v", str) for t in tags):
        return "tags are [{k, v}] with string values"
    fields = point.get("fields", [])
    if not isinstance(fields, list) or not all(_field(f) for f in fields):
        return "fields are [{k, v}] with a number, or [{k, s}] with a string"
    return None


def _pair(item: Any, key: str, kind: type | tuple[type, ...]) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("k"), str)
        and isinstance(item.get(key), kind)
        and not isinstance(item.get(key), bool)
    )


def _field(item: Any) -> bool:
    if not isinstance(item, dict) or ("v" in item) == ("s" in item):
        return False
    return _pair(item, "v", (int, float)) if "v" in item else _pair(item, "s", str)
