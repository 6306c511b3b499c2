"""Percentiles and latency summaries for the bench tools."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The keys of every latency summary, in display order.
SUMMARY_KEYS = ("n", "p50", "p90", "p99", "max", "mean")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0..100) of already sorted values, nearest-rank method."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Summarize durations given in seconds as milliseconds: n, p50, p90, p99, max, mean.

    Empty input gives ``n = 0`` and ``None`` for every figure (JSON ``null``).
    """
    if not seconds:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    values = sorted(seconds)

    def ms(x: float) -> float:
        return round(x * 1000.0, 3)

    return {
        "n": len(values),
        "p50": ms(percentile(values, 50)),
        "p90": ms(percentile(values, 90)),
        "p99": ms(percentile(values, 99)),
        "max": ms(values[-1]),
        "mean": ms(sum(values) / len(values)),
    }


def fmt(value: float | int | None, digits: int = 2) -> str:
    """Format a figure for a table: ``-`` for missing, fixed digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"
