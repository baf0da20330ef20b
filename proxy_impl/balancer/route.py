"""One route's balancer at run time: which target an attempt goes to, and what every target has
been through (health, requests in flight, latency, usage), for the algorithms and ``/status``.

``pick`` offers the algorithm the targets that may be tried now: not ejected by the breaker, and
not yet tried by this request while any such are left (so a retry goes elsewhere first; with one
target, or when every target has been tried, it goes to one tried before). ``start`` opens a
``Lease`` on the target for one attempt; its end (``failed``, ``answered``, ``passed``,
``abandoned``) is reported exactly once and feeds the breaker, the algorithm and the figures.

``Balancers`` holds the balancer of each plugin being served, with the random source and the
clock they share (both injectable, so tests are deterministic).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..analytics import Usage
from ..config import masked_url
from ..model import (
    CONSISTENT_HASHING,
    LEAST_CONNECTIONS,
    LOWEST_LATENCY,
    LOWEST_USAGE,
    PRIORITY,
    PROVIDER,
    ROUND_ROBIN,
    SEMANTIC,
    AiPlugin,
    Balancer,
    Target,
)
from . import algorithms
from .algorithms import Algorithm, Ask, Observation
from .health import Breaker

Clock = Callable[[], float]
FIGURE_WEIGHT = 0.3  # the moving averages /status shows, whatever the algorithm


def make_algorithm(
    settings: Balancer, targets: tuple[Target, ...], rng: random.Random
) -> Algorithm:
    weights = [target.weight for target in targets]
    kind = settings.algorithm
    if kind == PRIORITY:
        return algorithms.Priority(weights, rng)
    if kind == LEAST_CONNECTIONS:
        return algorithms.LeastConnections(weights, rng)
    if kind == LOWEST_LATENCY:
        return algorithms.LowestLatency(weights, rng, settings.latency_strategy)
    if kind == LOWEST_USAGE:
        return algorithms.LowestUsage(weights, rng)
    if kind == CONSISTENT_HASHING:
        return algorithms.ConsistentHashing(weights, rng, target_names(targets), settings.slots)
    if kind == SEMANTIC:
        return algorithms.Semantic(weights, rng)
    assert kind == ROUND_ROBIN, kind
    return algorithms.RoundRobin(weights, rng)


def target_names(targets: Iterable[Target]) -> list[str]:
    """A name per target that stays the same when targets are added or reordered."""
    seen: dict[str, int] = {}
    names = []
    for target in targets:
        base = f"{target.options.upstream_url}#{target.model_name or ''}"
        seen[base] = seen.get(base, 0) + 1
        names.append(f"{base}#{seen[base]}")
    return names


def usage_figure(strategy: str, usage: Usage) -> float:
    """A reply's usage under ``tokens_count_strategy``."""
    if strategy == "prompt-tokens":
        return usage.prompt_tokens
    if strategy == "completion-tokens":
        return usage.completion_tokens
    if strategy == "cost":
        return usage.cost
    return usage.total_tokens


@dataclass
class TargetFigures:
    """What ``/status`` shows of a target. ``attempts`` = ``in_flight`` + the four outcomes."""

    attempts: int = 0
    in_flight: int = 0
    answered: int = 0  # a 200 the client got (translated or streamed)
    passed: int = 0  # another answer that is no failure (an upstream 400, a failed translation)
    failed: int = 0  # a failure the breaker counts
    abandoned: int = 0  # the client went away first
    last_latency_ms: float | None = None
    e2e_ewma_ms: float | None = None
    tpot_ewma_ms: float | None = None
    usage: dict[str, float] = field(default_factory=lambda: {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": 0.0})  # fmt: skip

    def measured(self, e2e_ms: float, completion_tokens: int) -> None:
        self.last_latency_ms = e2e_ms
        self.e2e_ewma_ms = _moved(self.e2e_ewma_ms, e2e_ms)
        self.tpot_ewma_ms = _moved(self.tpot_ewma_ms, e2e_ms / max(1, completion_tokens))


def _moved(average: float | None, value: float) -> float:
    return value if average is None else average + FIGURE_WEIGHT * (value - average)


class RouteBalancer:
    def __init__(self, plugin: AiPlugin, rng: random.Random, clock: Clock) -> None:
        self.plugin = plugin
        self.targets = plugin.targets
        self.settings = plugin.balancer
        self.algorithm = make_algorithm(self.settings, self.targets, rng)
        self.breakers = [
            Breaker(self.settings.max_fails, self.settings.fail_timeout, clock)
            for _ in self.targets
        ]
        self.figures = [TargetFigures() for _ in self.targets]
        self.clock = clock
        # One target under round-robin (every ai-proxy route): the choice is always that target
        # when it may be tried, and the algorithm's state does not move, so ``pick`` skips it.
        self._single = len(self.targets) == 1 and type(self.algorithm) is algorithms.RoundRobin
        # Semantic routing: each description's vector, fetched once (under the lock).
        self.description_vectors: dict[str, list[float]] | None = None
        self.vectors_lock = asyncio.Lock()

    def pick(
        self, ask: Ask, tried: Collection[int] = (), excluded: Collection[int] = ()
    ) -> int | None:
        """The target for the next attempt; None when none may be tried."""
        if self._single:
            return 0 if 0 not in excluded and self.breakers[0].available() else None
        eligible = self.candidates(ask, excluded)
        if not eligible:
            return None
        fresh = [index for index in eligible if index not in tried]
        return self.algorithm.choose(fresh or eligible, ask)

    def candidates(self, ask: Ask, excluded: Collection[int] = ()) -> list[int]:
        """The targets this request may go to now: eligible for it, and not ejected."""
        available = [
            index for index, breaker in enumerate(self.breakers)
            if index not in excluded and breaker.available()
        ]  # fmt: skip
        return self.algorithm.eligible(available, ask)

    def start(self, index: int) -> Lease:
        trial = self.breakers[index].admit()
        figures = self.figures[index]
        figures.attempts += 1
        figures.in_flight += 1
        self.algorithm.started(index)
        return Lease(self, index, trial, time.monotonic())

    def status(self) -> list[dict[str, Any]]:
        """Every target's health and figures, as ``/status`` shows them."""
        shown = []
        for index, target in enumerate(self.targets):
            breaker, figures = self.breakers[index], self.figures[index]
            entry: dict[str, Any] = {
                "target": index,
                "model": f"{PROVIDER}/{target.model_name or '(client model)'}",
                "llama2_format": target.options.llama2_format,
                "upstream_url": masked_url(target.options.upstream_url),
                "weight": target.weight,
                "health": breaker.health(),
                "breaker_failures": breaker.failures,
                "seconds_until_trial": _rounded(breaker.seconds_until_trial()),
                "in_flight": figures.in_flight,
                "attempts": figures.attempts,
                "answered": figures.answered,
                "passed": figures.passed,
                "failed": figures.failed,
                "abandoned": figures.abandoned,
                "latency_ms": {
                    "last": _rounded(figures.last_latency_ms),
                    "e2e_ewma": _rounded(figures.e2e_ewma_ms),
                    "tpot_ewma": _rounded(figures.tpot_ewma_ms),
                },
                "usage": dict(figures.usage),
            }
            if target.description is not None:
                entry["description"] = target.description
            entry.update(self.algorithm.figures(index))
            shown.append(entry)
        return shown


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Lease:
    """One attempt on one target, from ``start`` to its one reported end."""

    def __init__(self, balancer: RouteBalancer, index: int, trial: bool, started: float) -> None:
        self.balancer = balancer
        self.index = index
        self.trial = trial
        self.started = started
        self.open = True

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def failed(self) -> None:
        """A failure the breaker counts (``failover.Verdict.failure``)."""
        if self._close("failed"):
            self.balancer.breakers[self.index].failed(self.trial)
            self.balancer.algorithm.finished(self.index, Observation(ok=False))

    def answered(self, usage: Usage) -> None:
        """A 200 the client got: the attempt's latency and usage are measured."""
        if not self._close("answered"):
            return
        balancer = self.balancer
        elapsed = self.elapsed_ms()
        figures = balancer.figures[self.index]
        figures.measured(elapsed, usage.completion_tokens)
        for name in figures.usage:
            figures.usage[name] += getattr(usage, name)
        balancer.breakers[self.index].succeeded(self.trial)
        observation = Observation(
            ok=True, e2e_ms=elapsed, completion_tokens=usage.completion_tokens,
            usage=usage_figure(balancer.settings.tokens_count_strategy, usage),
        )  # fmt: skip
        balancer.algorithm.finished(self.index, observation)

    def passed(self) -> None:
        """An answer that is not a failure, with nothing to measure."""
        if self._close("passed"):
            self.balancer.breakers[self.index].succeeded(self.trial)
            self.balancer.algorithm.finished(self.index, None)

    def abandoned(self) -> None:
        """Ended without a verdict: the client left, or the proxy failed on its own."""
        if self._close("abandoned"):
            self.balancer.breakers[self.index].abandoned(self.trial)
            self.balancer.algorithm.finished(self.index, None)

    def _close(self, outcome: str) -> bool:
        if not self.open:
            return False
        self.open = False
        figures = self.balancer.figures[self.index]
        figures.in_flight -= 1
        setattr(figures, outcome, getattr(figures, outcome) + 1)
        return True


class Balancers:
    """The balancer of each plugin being served, made on first use."""

    def __init__(self, seed: int | None = None, clock: Clock = time.monotonic) -> None:
        self.seed = seed
        self.clock = clock
        self._by_plugin: dict[int, tuple[AiPlugin, RouteBalancer]] = {}

    def of(self, plugin: AiPlugin) -> RouteBalancer:
        found = self._by_plugin.get(id(plugin))
        if found is None:  # the admin listener may ask from its own thread: first one wins
            rng = random.Random(self.seed) if self.seed is not None else random.Random()
            made = (plugin, RouteBalancer(plugin, rng, self.clock))
            found = self._by_plugin.setdefault(id(plugin), made)
        return found[1]

    def keep_only(self, plugins: Iterable[AiPlugin]) -> None:
        """Forget the balancers of plugins no longer served (a new config was loaded)."""
        kept = {id(plugin) for plugin in plugins}
        for key in [key for key in self._by_plugin if key not in kept]:
            del self._by_plugin[key]
