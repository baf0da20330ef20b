"""What a balancer check is, and what it concludes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..results import Outcome

if TYPE_CHECKING:
    from .traffic import Probe


@dataclass(frozen=True)
class TargetSpec:
    """One of a check's targets: the upstream (by role, see ``upstreams``) and its weight."""

    role: str
    weight: int = 100  # Kong's default


@dataclass(frozen=True)
class Verdict:
    """A check's conclusion with its evidence: counts, bounds, what each request met."""

    outcome: Outcome
    details: list[str]
    expected: dict[str, Any] = field(default_factory=dict)
    actual: dict[str, Any] = field(default_factory=dict)


def verdict(problems: list[str], summary: list[str], expected: dict[str, Any],
            actual: dict[str, Any]) -> Verdict:
    """Pass with ``summary`` as the evidence when there are no problems, else fail with them
    (and the summary after them)."""
    if problems:
        return Verdict("fail", [*problems, *summary], expected, actual)
    return Verdict("pass", summary, expected, actual)


@dataclass(frozen=True)
class Check:
    """One balancer behaviour, checked on a route of its own."""

    id: str  # balancer.<group>.<name>
    title: str
    group: str  # round-robin, priority, lowest-latency, consistent-hashing, failover, ...
    targets: tuple[TargetSpec, ...]
    balancer: Mapping[str, Any]  # the plugin's ``config.balancer``
    run: Callable[[Probe], Verdict]  # drives traffic and faults, then judges

    @property
    def features(self) -> tuple[str, ...]:
        return ("balancer", self.group)

    @property
    def hosting(self) -> str:
        return "ollama"

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(spec.role for spec in self.targets))

    @property
    def retries(self) -> int:
        return int(self.balancer.get("retries", 5))  # Kong's default
