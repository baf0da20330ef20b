"""The few statistics the benchmark reports (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` 0.5 = p50, 0.99 = p99); None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def ratio(proxied: float | None, direct: float | None) -> float | None:
    """``proxied / direct``; None when either side is missing or the direct figure is 0."""
    if proxied is None or direct is None or direct <= 0:
        return None
    return proxied / direct


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000
