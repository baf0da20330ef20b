"""The statistics the balancer checks decide by: exact binomial tails and Pearson's chi-square
goodness of fit. Pure functions of counts, standard library only."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def binomial_upper_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def binomial_threshold(n: int, p: float, alpha: float) -> int:
    """The least k with P(X >= k) <= alpha for X ~ Binomial(n, p): a count at or above it is
    evidence (at level alpha) of a share larger than p. n + 1 when no count is enough."""
    for k in range(n + 1):
        if binomial_upper_tail(n, p, k) <= alpha:
            return k
    return n + 1


def _lower_gamma_series(a: float, x: float) -> float:
    """P(a, x), the regularised lower incomplete gamma function, by its power series."""
    term = total = 1.0 / a
    denominator = a
    while abs(term) > abs(total) * 1e-15:
        denominator += 1
        term *= x / denominator
        total += term
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_gamma_fraction(a: float, x: float) -> float:
    """Q(a, x), the regularised upper incomplete gamma function, by Lentz's continued fraction."""
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return h * math.exp(-x + a * math.log(x) - math.lgamma(a))


def chi_square_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X ~ chi-square with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("a chi-square distribution needs at least 1 degree of freedom")
    if statistic <= 0:
        return 1.0
    a, x = df / 2, statistic / 2
    if x < a + 1:
        return max(0.0, 1.0 - _lower_gamma_series(a, x))
    return min(1.0, _upper_gamma_fraction(a, x))


def chi_square_critical(df: int, alpha: float) -> float:
    """The value the statistic exceeds with probability alpha (bisection on ``chi_square_sf``)."""
    low, high = 0.0, 1.0
    while chi_square_sf(high, df) > alpha:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if chi_square_sf(middle, df) > alpha:
            low = middle
        else:
            high = middle
    return high


@dataclass(frozen=True)
class GoodnessOfFit:
    """Observed counts against the shares they should follow."""

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    df: int
    p_value: float
    critical: float  # the statistic's bound at the test's alpha
    alpha: float

    @property
    def fits(self) -> bool:
        return self.statistic <= self.critical


def goodness_of_fit(observed: Mapping[str, int], weights: Mapping[str, float],
                    alpha: float) -> GoodnessOfFit:
    """Pearson's chi-square test of ``observed`` counts against shares proportional to
    ``weights`` (same keys). A count outside the weights' keys is a ValueError: every answer must
    come from a target the test knows."""
    stray = set(observed) - set(weights)
    if stray:
        raise ValueError(f"counts for unknown categories: {', '.join(sorted(stray))}")
    total = sum(observed.values())
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0 or len(weights) < 2:
        raise ValueError("a goodness-of-fit test needs counts and at least two categories")
    expected = {key: total * weight / weight_sum for key, weight in weights.items()}
    statistic = sum((observed.get(key, 0) - mean) ** 2 / mean for key, mean in expected.items())
    df = len(weights) - 1
    return GoodnessOfFit(
        {key: observed.get(key, 0) for key in weights}, expected, statistic, df,
        chi_square_sf(statistic, df), chi_square_critical(df, alpha), alpha,
    )


def shares(counts: Sequence[str]) -> dict[str, int]:
    """How often each value occurs, in first-seen order."""
    found: dict[str, int] = {}
    for value in counts:
        found[value] = found.get(value, 0) + 1
    return found
