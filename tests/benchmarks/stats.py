"""Statistics of samples: nearest-rank percentiles and latency summaries in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """count, mean, p50, p90, p99 and max of latencies given in seconds, in milliseconds."""
    values = sorted(s * 1000 for s in seconds)
    mean = sum(values) / len(values) if values else math.nan
    return {
        "count": len(values),
        "mean_ms": round(mean, 3),
        "p50_ms": round(percentile(values, 0.50), 3),
        "p90_ms": round(percentile(values, 0.90), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "max_ms": round(values[-1], 3) if values else math.nan,
    }


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan


def worst_round(summaries: Sequence[dict[str, float]]) -> dict[str, float]:
    """Several rounds' latency summaries (latency_ms's shape) as one, without their samples.

    The count and max are exact, and so is the mean (the count-weighted mean of the
    means). A percentile is not: averaging percentiles gives no percentile at all. The
    pooled rounds' p-th percentile lies between the lowest and the highest round's (the
    pooled distribution is a mixture of theirs), so this takes the highest: an upper
    bound, the worst round's, applied alike to every receiver compared.
    """
    answered = [s for s in summaries if s["count"]]
    count = sum(s["count"] for s in answered)
    if not count:
        return latency_ms([])
    mean = sum(s["count"] * s["mean_ms"] for s in answered) / count
    worst = {k: max(s[k] for s in answered) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
    return {"count": count, "mean_ms": round(mean, 3)} | worst


def p50_p99(summary: dict[str, float]) -> str:
    """A latency summary's median and p99, for a report row."""
    return f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} ms"
