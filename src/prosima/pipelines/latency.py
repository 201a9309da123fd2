"""Latency summaries shared by the demo and the pipeline benchmark."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """Median and 95th percentile (nearest rank) in milliseconds, and the number of calls."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]
    return {"median_ms": 1e3 * statistics.median(ordered), "p95_ms": 1e3 * p95, "n": len(ordered)}
