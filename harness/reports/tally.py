"""What the human-facing reports (Markdown, terminal) count alike, so they never disagree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ..results import OUTCOMES, CaseResult

GATEWAY = "gateway"  # the column (and JUnit suite) of cases that need no upstream
NO_FEATURE = "(no feature)"


def hosting_of(case: CaseResult) -> str:
    return case.hosting or GATEWAY


@dataclass(frozen=True)
class Matrix:
    """Outcome counts per feature × hosting; a case with several features counts in each row."""

    features: list[str]
    hostings: list[str]
    cells: dict[tuple[str, str], Counter[str]]

    def cell(self, feature: str, hosting: str) -> Counter[str]:
        return self.cells.get((feature, hosting), Counter())


def matrix(cases: Iterable[CaseResult]) -> Matrix:
    cells: dict[tuple[str, str], Counter[str]] = {}
    features: dict[str, None] = {}  # dicts keep first-seen order: the catalogue's order
    hostings: dict[str, None] = {}
    for case in cases:
        hosting = hosting_of(case)
        hostings[hosting] = None
        for feature in case.features or (NO_FEATURE,):
            features[feature] = None
            cells.setdefault((feature, hosting), Counter())[case.outcome] += 1
    # Upstream hostings first, then the gateway-only column.
    columns = [h for h in hostings if h != GATEWAY] + ([GATEWAY] if GATEWAY in hostings else [])
    return Matrix(list(features), columns, cells)


def named_deviations(cases: Iterable[CaseResult]) -> dict[str, list[CaseResult]]:
    """Each named deviation with the cases showing it: one Kong quirk often explains many cases."""
    named: dict[str, list[CaseResult]] = {}
    for case in cases:
        if case.outcome == "deviation":
            for name in case.details or ["(unnamed deviation)"]:
                named.setdefault(name, []).append(case)
    return named


def counts_line(summary: dict[str, int]) -> str:
    """``131 pass · 0 fail · 9 deviation · 2 n/a``"""
    return " · ".join(f"{summary.get(outcome, 0)} {outcome}" for outcome in OUTCOMES)
