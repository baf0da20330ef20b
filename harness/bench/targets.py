"""The proxy's speed targets (issue 13), judged from a report's figures (pure).

Each target holds for every hosting of the bundled proxy, so the figure shown is the worst one:
the lowest throughput ratio, the largest added latency. "Added" is proxied minus direct, in
milliseconds, both measured back to back in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import median

from .results import BUNDLED, Comparison


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    at_least: bool  # True: the figure must be >= limit; False: <= limit
    unit: str
    figure: float | None  # the worst over the hostings; None = not measured
    hosting: str = ""  # where the worst figure is
    spread: tuple[float, float] | None = None  # that hosting's lowest and highest over rounds

    @property
    def met(self) -> bool | None:
        if self.figure is None:
            return None
        return self.figure >= self.limit if self.at_least else self.figure <= self.limit

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        verdict = {None: "not measured", True: "met", False: "NOT met"}[self.met]
        shown = "n/a" if self.figure is None else f"{self.figure:.2f}{self.unit}"
        where = ""
        if self.hosting and self.figure is not None:
            rounds = ""
            if self.spread:
                low, high = self.spread
                rounds = f"; rounds {low:.2f} to {high:.2f}{self.unit}"
            where = f" ({self.hosting}{rounds})"
        return f"{self.name} {sign} {self.limit:g}{self.unit}: {shown}{where}, {verdict}"


# The time limits are absolute. They were set where a direct non-streaming chat request cost the
# Ollama and OpenAI-style mocks 219 and 188 µs of CPU (issue 13's table); on a machine where the
# same request costs the mock several times that, the proxy's CPU per request grows alike and
# so does every added millisecond, while the throughput ratio stays comparable.
LIMITS_SET_AT_MOCK_US = (188.0, 219.0)


def machine_pace(overhead: Sequence[Comparison]) -> str | None:
    """How this machine's pace compares with the one the time limits were set on: the median
    CPU per request of the mock called directly (the bundled proxy's rows), or None."""
    spent = [row.direct.cpu_us_per_request for row in overhead
             if row.subject == BUNDLED and row.direct is not None
             and row.direct.cpu_us_per_request]
    if not spent:
        return None
    here = median(spent)
    low, high = LIMITS_SET_AT_MOCK_US
    return (f"time limits are absolute, set where a direct request cost the mock "
            f"{low:.0f}-{high:.0f} µs of CPU; here {here:,.0f} µs "
            f"({here / median(LIMITS_SET_AT_MOCK_US):.1f}x)")


# name, limit, at least?, unit, which rows (overhead or streaming), the figure (``figures()``)
_TARGETS: tuple[tuple[str, float, bool, str, str, str], ...] = (
    ("throughput through the proxy, x direct (non-streaming, concurrency N)", 0.5, True, "x",
     "overhead", "ratio:throughput"),
    ("added latency p50 at concurrency 1", 0.3, False, " ms", "overhead", "added:p50"),
    ("added latency p99 at concurrency N", 2.0, False, " ms", "overhead", "added:loaded_p99"),
    ("streaming: added time to first token (p50)", 0.5, False, " ms", "streaming",
     "added:first_token_p50"),
    ("streaming: added delay per chunk (p99)", 0.5, False, " ms", "streaming",
     "added:chunk_gap_p99"),
)


def judge(overhead: Sequence[Comparison], streaming: Sequence[Comparison],
          concurrency: int) -> list[Target]:
    """Each target with the bundled proxy's worst figure over its hostings."""
    rows = {"overhead": [r for r in overhead if r.subject == BUNDLED],
            "streaming": [r for r in streaming if r.subject == BUNDLED]}
    found = []
    for name, limit, at_least, unit, section, figure in _TARGETS:
        target = Target(name.replace("concurrency N", f"concurrency {concurrency}"),
                        limit, at_least, unit, None)
        measured = [(value, row) for row in rows[section]
                    if (value := row.figures().get(figure)) is not None]
        if measured:
            value, row = (min if at_least else max)(measured, key=lambda pair: pair[0])
            target = replace(target, figure=value, hosting=row.hosting,
                             spread=row.spread.get(figure))
        found.append(target)
    return found
