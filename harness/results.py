"""What a conformance run found: one result per case, and the run's report.

Every string in a result is already masked (``harness/secrets.py``): a report writer may print
anything it finds here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["pass", "fail", "deviation", "n/a"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "deviation", "n/a")


@dataclass
class CaseResult:
    id: str
    title: str
    features: tuple[str, ...]
    hosting: str  # "Ollama", "HuggingFace", ... or "" for a case that needs no upstream
    outcome: Outcome
    # Why: the problems of a failure, the named Kong deviation(s), why a case is n/a.
    details: list[str] = field(default_factory=list)
    # Side by side for a failure: what the oracle expected and what came back (JSON-able).
    expected: dict[str, Any] = field(default_factory=dict)
    actual: dict[str, Any] = field(default_factory=dict)
    journal: list[dict[str, Any]] = field(default_factory=list)  # what the mock received
    route: str = ""  # the gateway route the case ran on (the user's own, in --config mode)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "features": list(self.features),
            "hosting": self.hosting, "route": self.route, "outcome": self.outcome,
            "details": self.details, "expected": self.expected, "actual": self.actual,
            "journal": self.journal, "seconds": round(self.seconds, 4),
        }  # fmt: skip


@dataclass
class Report:
    gateway: dict[str, Any]  # name, mode (reference / kong-compat), proxy URL, ...
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(case.outcome for case in self.cases)
        return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failed(self) -> bool:
        return self.summary["fail"] > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "cases": [case.as_dict() for case in self.cases],
            "summary": self.summary,
        }
