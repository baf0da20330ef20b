"""Each balancer algorithm's choice as a function of its state, the candidates and a seeded random
source (docs/balancer.md#algorithms); and the route balancer's offer: healthy targets, not yet
tried ones first."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from proxyproof.proxy_impl.balancer import algorithms
from proxyproof.proxy_impl.balancer.algorithms import Ask, Observation
from proxyproof.proxy_impl.balancer.route import RouteBalancer, target_names
from proxyproof.proxy_impl.model import AI_PROXY_ADVANCED, AiPlugin, Balancer, ModelOptions, Target

NONE = Ask()


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def target(url: str = "http://a/api/chat", weight: int = 100, **fields) -> Target:
    return Target("llm/v1/chat", "llama2", ModelOptions("ollama", url), weight=weight, **fields)


def picks(algorithm: algorithms.Algorithm, count: int, candidates=None, ask: Ask = NONE) -> list:
    every = list(range(len(algorithm.weights))) if candidates is None else candidates
    return [algorithm.choose(every, ask) for _ in range(count)]


# --- round-robin and priority ------------------------------------------------------------------


def test_round_robin_gives_each_target_exactly_its_weighted_share():
    chosen = picks(algorithms.RoundRobin([70, 25, 5], rng()), 100)
    assert Counter(chosen) == {0: 70, 1: 25, 2: 5}


def test_round_robin_interleaves_rather_than_runs():
    chosen = picks(algorithms.RoundRobin([2, 1], rng()), 6)
    assert chosen == [0, 1, 0, 0, 1, 0]


def test_round_robin_spreads_over_the_candidates_offered():
    chosen = picks(algorithms.RoundRobin([50, 50, 100], rng()), 8, candidates=[0, 1])
    assert Counter(chosen) == {0: 4, 1: 4}


def test_round_robin_is_a_function_of_its_history():
    first = algorithms.RoundRobin([3, 2, 1], rng(1))
    second = algorithms.RoundRobin([3, 2, 1], rng(99))
    assert picks(first, 30) == picks(second, 30)  # no randomness involved


def test_priority_uses_the_heaviest_tier_round_robin():
    priority = algorithms.Priority([70, 70, 25], rng())
    assert Counter(picks(priority, 10)) == {0: 5, 1: 5}


def test_priority_falls_to_the_next_tier_only_without_any_target_above():
    priority = algorithms.Priority([70, 70, 25, 10], rng())
    assert picks(priority, 3, candidates=[1, 2, 3]) == [1, 1, 1]
    assert picks(priority, 2, candidates=[2, 3]) == [2, 2]
    assert picks(priority, 1, candidates=[3]) == [3]


# --- least-connections ---------------------------------------------------------------------------


def test_least_connections_goes_to_the_fewest_in_flight_per_weight():
    least = algorithms.LeastConnections([100, 100, 200], rng())
    least.in_flight = [1, 0, 2]
    assert least.choose([0, 1, 2], NONE) == 1
    least.in_flight = [1, 1, 1]
    assert least.choose([0, 1, 2], NONE) == 2  # (1+1)/200 is the most spare capacity


def test_least_connections_breaks_ties_with_the_seeded_source():
    def run(seed: int) -> list[int]:
        return picks(algorithms.LeastConnections([1, 1, 1], rng(seed)), 20)

    assert run(3) == run(3)
    assert set(run(3)) == {0, 1, 2}


def test_least_connections_counts_starts_and_ends():
    least = algorithms.LeastConnections([1, 1], rng())
    for index in (0, 0, 1):
        least.started(index)
    least.finished(0, None)
    assert least.in_flight == [1, 1]


# --- lowest-latency ------------------------------------------------------------------------------


def test_lowest_latency_measures_every_target_first():
    latency = algorithms.LowestLatency([1, 1, 1], rng(), "e2e")
    assert picks(latency, 3) == [0, 1, 2]


def measured_latency(seed: int) -> algorithms.LowestLatency:
    latency = algorithms.LowestLatency([1, 1, 1], rng(seed), "e2e")
    for index, ms in ((0, 50.0), (1, 10.0), (2, 30.0)):
        latency.finished(index, Observation(ok=True, e2e_ms=ms))
    return latency


def test_lowest_latency_prefers_the_lowest_average_and_keeps_probing():
    chosen = Counter(picks(measured_latency(5), 2000))
    assert chosen[1] > 1800  # the fastest, ~95 %
    assert chosen[0] > 0 and chosen[2] > 0  # the others still get probes
    assert picks(measured_latency(5), 200) == picks(measured_latency(5), 200)


def test_lowest_latency_tpot_divides_by_the_output_tokens():
    latency = algorithms.LowestLatency([1, 1], rng(), "tpot")
    latency.finished(0, Observation(ok=True, e2e_ms=100.0, completion_tokens=50))  # 2 ms/token
    latency.finished(1, Observation(ok=True, e2e_ms=30.0, completion_tokens=5))  # 6 ms/token
    assert latency.average == [2.0, 6.0]
    e2e = algorithms.LowestLatency([1, 1], rng(), "e2e")
    e2e.finished(0, Observation(ok=True, e2e_ms=100.0, completion_tokens=50))
    e2e.finished(1, Observation(ok=True, e2e_ms=30.0, completion_tokens=5))
    assert e2e.average == [100.0, 30.0]


def test_lowest_latency_average_moves_by_the_ewma_weight():
    latency = algorithms.LowestLatency([1], rng(), "e2e")
    latency.finished(0, Observation(ok=True, e2e_ms=100.0))
    latency.finished(0, Observation(ok=True, e2e_ms=200.0))
    assert latency.average[0] == pytest.approx(100 + algorithms.EWMA_WEIGHT * 100)


def test_a_failure_counts_as_twice_the_slowest_figure():
    latency = algorithms.LowestLatency([1, 1], rng(), "e2e")
    latency.finished(0, Observation(ok=False))
    assert latency.average[0] == algorithms.FAILURE_PENALTY_MS
    latency.finished(1, Observation(ok=True, e2e_ms=3000.0))
    latency.finished(1, Observation(ok=False))
    assert latency.average[1] == pytest.approx(3000 + algorithms.EWMA_WEIGHT * 3000)


# --- lowest-usage --------------------------------------------------------------------------------


def test_lowest_usage_chooses_the_least_used_target():
    usage = algorithms.LowestUsage([1, 1, 1], rng())
    for index, used in ((0, 300.0), (1, 20.0), (2, 90.0)):
        usage.started(index)
        usage.finished(index, Observation(ok=True, usage=used))
    assert usage.choose([0, 1, 2], NONE) == 1
    assert usage.choose([0, 2], NONE) == 2


def test_lowest_usage_counts_requests_in_flight_as_average_ones():
    usage = algorithms.LowestUsage([1, 1], rng())
    usage.started(0)
    usage.finished(0, Observation(ok=True, usage=100.0))
    usage.started(1)
    usage.finished(1, Observation(ok=True, usage=60.0))
    usage.started(1)  # 60 + one average request (80) = 140 > 100
    assert usage.choose([0, 1], NONE) == 0
    burst = algorithms.LowestUsage([1, 1], rng())
    chosen = []
    for _ in range(4):  # nothing finished yet: a burst spreads
        chosen.append(burst.choose([0, 1], NONE))
        burst.started(chosen[-1])
    assert Counter(chosen) == {0: 2, 1: 2}


def test_failures_add_no_usage():
    usage = algorithms.LowestUsage([1], rng())
    usage.started(0)
    usage.finished(0, Observation(ok=False, usage=500.0))
    assert usage.used == [0.0] and usage.in_flight == [0]


# --- consistent-hashing --------------------------------------------------------------------------


def hashing(weights, seed: int = 1) -> algorithms.ConsistentHashing:
    names = [f"http://host-{i}/api/chat#llama2#1" for i in range(len(weights))]
    return algorithms.ConsistentHashing(weights, rng(seed), names, slots=10000)


def test_one_hash_value_always_gets_the_same_target():
    ring = hashing([100, 100, 100])
    for key in ("session-1", "session-2", "ünïcode"):
        chosen = {ring.choose([0, 1, 2], Ask(hash_key=key)) for _ in range(5)}
        assert len(chosen) == 1
    assert hashing([100, 100, 100], seed=2).choose([0, 1, 2], Ask(hash_key="session-1")) == (
        ring.choose([0, 1, 2], Ask(hash_key="session-1")))  # the seed plays no part


def test_hash_values_spread_by_weight():
    ring = hashing([300, 100])
    placed = Counter(ring.choose([0, 1], Ask(hash_key=f"user-{i}")) for i in range(4000))
    assert 2800 < placed[0] < 3200  # ~75 %


def test_when_a_target_leaves_only_its_values_move():
    ring = hashing([100, 100, 100])
    keys = [f"user-{i}" for i in range(300)]
    before = {key: ring.choose([0, 1, 2], Ask(hash_key=key)) for key in keys}
    after = {key: ring.choose([0, 2], Ask(hash_key=key)) for key in keys}
    assert all(after[key] == before[key] for key in keys if before[key] != 1)
    assert {after[key] for key in keys if before[key] == 1} == {0, 2}


def test_values_in_one_slot_share_a_target():
    ring = algorithms.ConsistentHashing([1] * 8, rng(), [f"t{i}" for i in range(8)], slots=10)
    by_slot: dict[int, set[int]] = {}
    for i in range(200):
        key = f"k{i}"
        by_slot.setdefault(ring.slot(key), set()).add(ring.choose(range(8), Ask(hash_key=key)))
    assert all(len(targets) == 1 for targets in by_slot.values())


def test_without_the_header_a_weighted_random_target():
    ring = hashing([900, 100], seed=4)
    chosen = Counter(ring.choose([0, 1], NONE) for _ in range(1000))
    assert chosen[0] > 800 and chosen[1] > 0
    assert picks(hashing([1, 1], 9), 20) == picks(hashing([1, 1], 9), 20)


def test_target_names_survive_reordering_and_tell_duplicates_apart():
    a, b = target("http://a/api/chat"), target("http://b/api/chat")
    assert target_names([a, b, a]) == [
        "http://a/api/chat#llama2#1", "http://b/api/chat#llama2#1", "http://a/api/chat#llama2#2"]
    assert target_names([b, a])[1] == target_names([a, b])[0]


# --- semantic ------------------------------------------------------------------------------------


def test_semantic_takes_the_ranking_in_order():
    chosen = algorithms.Semantic([1, 1, 1, 1], rng())
    ask = Ask(ranked=(2, 0))
    assert chosen.eligible([0, 1, 2, 3], ask) == [2, 0]
    assert chosen.choose([0, 2], ask) == 2
    assert chosen.choose([0], ask) == 0


# --- the route balancer's offer -------------------------------------------------------------------


def route(*targets: Target, **balancer) -> RouteBalancer:
    plugin = AiPlugin(AI_PROXY_ADVANCED, targets[0], targets=targets,
                      balancer=replace(Balancer(), **balancer))
    return RouteBalancer(plugin, rng(), clock=lambda: 0.0)


def test_a_retry_goes_to_a_target_not_tried_yet():
    balancer = route(target("http://a"), target("http://b"), target("http://c"))
    assert balancer.pick(NONE, tried=[0]) in (1, 2)
    assert balancer.pick(NONE, tried=[0, 1]) == 2
    assert balancer.pick(NONE, tried=[0, 1, 2]) in (0, 1, 2)  # all tried: any again


def test_one_target_is_retried_itself():
    balancer = route(target())
    assert balancer.pick(NONE, tried=[0, 0]) == 0


def test_priority_goes_down_a_tier_once_the_tier_above_was_tried():
    balancer = route(target("http://a", 70), target("http://b", 70), target("http://c", 25),
                     algorithm="priority")
    first = balancer.pick(NONE)
    second = balancer.pick(NONE, tried=[first])
    assert {first, second} == {0, 1}
    assert balancer.pick(NONE, tried=[first, second]) == 2


def test_ejected_and_excluded_targets_are_not_offered():
    balancer = route(target("http://a"), target("http://b"), max_fails=1)
    lease = balancer.start(0)
    lease.failed()
    assert [balancer.pick(NONE) for _ in range(4)] == [1, 1, 1, 1]
    assert balancer.pick(NONE, excluded=[1]) is None


def test_leases_end_once_and_the_figures_add_up():
    balancer = route(target("http://a"), target("http://b"))
    one, two, three = balancer.start(0), balancer.start(0), balancer.start(1)
    one.failed()
    one.passed()  # a second end is ignored
    two.abandoned()
    figures = balancer.figures[0]
    assert (figures.attempts, figures.in_flight, figures.failed, figures.abandoned) == (2, 0, 1, 1)
    assert balancer.figures[1].in_flight == 1
    three.passed()
    assert balancer.figures[1].passed == 1 and balancer.figures[1].in_flight == 0
