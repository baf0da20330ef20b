"""How each ``balancer.algorithm`` chooses a target (docs/balancer.md#algorithms).

Each algorithm is a small object whose choice is a function of its own state, the candidates it
is offered and an injected ``random.Random``: given the same seed and the same history it chooses
the same targets, so it is tested as a pure function. It never sees the network: the route's
balancer (``route.py``) offers it the targets that may be tried now (healthy, not yet tried by this
request when any are left), tells it when an attempt starts and how it ended.

Targets are indexes into the route's ``targets[]``.
"""

from __future__ import annotations

import hashlib
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..model import (
    CONSISTENT_HASHING,
    LEAST_CONNECTIONS,
    LOWEST_LATENCY,
    LOWEST_USAGE,
    PRIORITY,
    ROUND_ROBIN,
    SEMANTIC,
)

EWMA_WEIGHT = 0.3  # how much the newest latency moves the average
PROBE_SHARE = 0.05  # lowest-latency: the share of requests that measure the other targets
FAILURE_PENALTY_MS = 1000.0  # a failed attempt's latency when no target has a figure yet


@dataclass(slots=True)
class Ask:
    """What a choice may depend on in the request."""

    hash_key: str | None = None  # consistent-hashing: the hash_on_header value, if sent
    ranked: tuple[int, ...] = ()  # semantic: the targets that match the prompt, best first


@dataclass(slots=True)
class Observation:
    """How an attempt ended, for the algorithms that learn from it."""

    ok: bool  # answered; False: a failure the breaker counts
    e2e_ms: float = 0.0  # from sending the request to the last byte of the reply
    completion_tokens: int = 0
    usage: float = 0.0  # the reply's usage under tokens_count_strategy


class Algorithm:
    """The interface, and the state every algorithm may need: weights and the random source."""

    name = ""

    def __init__(self, weights: Sequence[int], rng: random.Random) -> None:
        self.weights = list(weights)
        self.rng = rng

    def eligible(self, available: Sequence[int], ask: Ask) -> list[int]:
        """The available targets this request may go to at all."""
        return list(available)

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        raise NotImplementedError

    def started(self, index: int) -> None:
        """An attempt to ``index`` begins."""

    def finished(self, index: int, observation: Observation | None) -> None:
        """An attempt to ``index`` ended; None: without a verdict (the client left)."""

    def figures(self, index: int) -> dict[str, Any]:
        """What the algorithm knows of ``index``, for ``/status``."""
        return {}


class RoundRobin(Algorithm):
    """Weighted round-robin, smoothly interleaved (nginx's algorithm): weights 70/25/5 give
    exactly 70, 25 and 5 of every 100 choices, spread out rather than in runs."""

    name = ROUND_ROBIN

    def __init__(self, weights: Sequence[int], rng: random.Random) -> None:
        super().__init__(weights, rng)
        self.current = [0] * len(self.weights)

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        total = 0
        for index in candidates:
            self.current[index] += self.weights[index]
            total += self.weights[index]
        chosen = max(candidates, key=lambda index: (self.current[index], -index))
        self.current[chosen] -= total
        return chosen


class Priority(RoundRobin):
    """Tiers of equal weight, the highest weight first, round-robin within a tier; a lower tier
    only when no target above is left (each has failed for this request, or is ejected)."""

    name = PRIORITY

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        top = max(self.weights[index] for index in candidates)
        return super().choose([i for i in candidates if self.weights[i] == top], ask)


class LeastConnections(Algorithm):
    """The target with the most spare capacity: fewest requests in flight per unit of weight."""

    name = LEAST_CONNECTIONS

    def __init__(self, weights: Sequence[int], rng: random.Random) -> None:
        super().__init__(weights, rng)
        self.in_flight = [0] * len(self.weights)

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        load = {index: (self.in_flight[index] + 1) / self.weights[index] for index in candidates}
        least = min(load.values())
        return self.rng.choice([index for index in candidates if load[index] == least])

    def started(self, index: int) -> None:
        self.in_flight[index] += 1

    def finished(self, index: int, observation: Observation | None) -> None:
        self.in_flight[index] -= 1


class LowestLatency(Algorithm):
    """The target with the lowest moving average (EWMA) of its latency, ``tpot`` (time per
    output token) or ``e2e``; a small share of requests go to the others, so a target that got
    faster is noticed. A target without a figure is measured first; a failed attempt counts as
    twice the slowest figure known."""

    name = LOWEST_LATENCY

    def __init__(self, weights: Sequence[int], rng: random.Random, strategy: str = "tpot") -> None:
        super().__init__(weights, rng)
        self.strategy = strategy
        self.average: list[float | None] = [None] * len(self.weights)
        self.picks = [0] * len(self.weights)

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        unmeasured = [index for index in candidates if self.average[index] is None]
        if unmeasured:
            chosen = min(unmeasured, key=lambda index: (self.picks[index], index))
        else:
            chosen = min(candidates, key=lambda index: (self.average[index], index))
            others = [index for index in candidates if index != chosen]
            if others and self.rng.random() < PROBE_SHARE:
                chosen = self.rng.choice(others)
        self.picks[chosen] += 1
        return chosen

    def finished(self, index: int, observation: Observation | None) -> None:
        if observation is None:
            return
        if observation.ok:
            value = observation.e2e_ms
            if self.strategy == "tpot":
                value /= max(1, observation.completion_tokens)
        else:
            known = [figure for figure in self.average if figure is not None]
            value = 2 * max(known) if known else FAILURE_PENALTY_MS
        before = self.average[index]
        self.average[index] = value if before is None else before + EWMA_WEIGHT * (value - before)

    def figures(self, index: int) -> dict[str, Any]:
        average = self.average[index]
        return {f"{self.strategy}_ewma_ms": None if average is None else round(average, 3)}


class LowestUsage(Algorithm):
    """The target with the lowest usage so far under ``tokens_count_strategy`` (tokens, or
    their cost). Requests in flight count as the average request's usage, so a burst does not
    all land on the target that was lowest when it began."""

    name = LOWEST_USAGE

    def __init__(self, weights: Sequence[int], rng: random.Random) -> None:
        super().__init__(weights, rng)
        self.used = [0.0] * len(self.weights)
        self.in_flight = [0] * len(self.weights)
        self.answered = 0

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        average = sum(self.used) / self.answered if self.answered else 0.0

        def projected(index: int) -> tuple[float, int, int]:
            in_flight = self.in_flight[index]
            return self.used[index] + in_flight * average, in_flight, index

        return min(candidates, key=projected)

    def started(self, index: int) -> None:
        self.in_flight[index] += 1

    def finished(self, index: int, observation: Observation | None) -> None:
        self.in_flight[index] -= 1
        if observation is not None and observation.ok:
            self.used[index] += observation.usage
            self.answered += 1

    def figures(self, index: int) -> dict[str, Any]:
        return {"usage_counted": round(self.used[index], 6)}


class ConsistentHashing(Algorithm):
    """Requests with the same ``hash_on_header`` value go to the same target while it is
    available. The value picks one of ``slots`` slots; the slot goes to the target with the
    highest weighted rendezvous score, so when a target leaves only its own slots move, and
    each target gets slots in proportion to its weight. Without the header: a weighted random
    target."""

    name = CONSISTENT_HASHING

    def __init__(
        self, weights: Sequence[int], rng: random.Random, names: Sequence[str], slots: int = 10000
    ) -> None:
        super().__init__(weights, rng)
        self.names = list(names)
        self.slots = slots

    def slot(self, key: str) -> int:
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % self.slots

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        if ask.hash_key is None:
            weights = [self.weights[index] for index in candidates]
            return self.rng.choices(list(candidates), weights=weights)[0]
        slot = self.slot(ask.hash_key)
        return max(candidates, key=lambda index: (self._score(slot, index), -index))

    def _score(self, slot: int, index: int) -> float:
        digest = hashlib.blake2b(f"{slot}/{self.names[index]}".encode(), digest_size=8).digest()
        unit = (int.from_bytes(digest, "big") + 0.5) / 2**64  # in (0, 1)
        return -self.weights[index] / math.log(unit)


class Semantic(Algorithm):
    """The targets whose description is nearest the prompt (``Ask.ranked``, worked out from the
    embeddings), in that order: the first available one."""

    name = SEMANTIC

    def eligible(self, available: Sequence[int], ask: Ask) -> list[int]:
        offered = set(available)
        return [index for index in ask.ranked if index in offered]

    def choose(self, candidates: Sequence[int], ask: Ask) -> int:
        offered = set(candidates)
        return next(index for index in ask.ranked if index in offered)
