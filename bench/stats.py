"""Figures: every measured value is the median of repeated runs, with their min and max."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

Figure = dict[str, Any]


def figure(values: Sequence[float], digits: int = 3) -> Figure:
    """``{"median", "min", "max", "runs"}`` of repeated runs of one measurement."""
    if not values:
        raise ValueError("no runs")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of one run's samples."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def timed(work: Callable[[], object], repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` calls of ``work``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        out.append(time.perf_counter() - start)
    return out


def median_of(fig: Figure | None) -> float | None:
    return None if fig is None else float(fig["median"])


def ratio(top: float | None, bottom: float | None, digits: int = 3) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return round(top / bottom, digits)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None
