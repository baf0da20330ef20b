"""AI Proxy Advanced's ``balancer``, ``targets[]``, ``embeddings`` and ``vectordb`` read with Kong's
defaults and ranges; every mistake one line naming its field (docs/balancer.md#configuration)."""

from __future__ import annotations

from typing import Any

import pytest
from proxy_support import CHAT, COMPLETIONS, ai_proxy, declarative

from proxyproof.proxy_impl import ConfigError, describe, load_config
from proxyproof.proxy_impl.model import Balancer, Embeddings, VectorDb

PLUGIN = "services[0].routes[0].plugins[0].config"


def target(url: str = "http://a/api/chat", route_type: str = CHAT, **fields: Any) -> dict:
    return {**ai_proxy(route_type, "ollama", url), **fields}


def config(targets: list[dict] | None = None, **top: Any) -> dict:
    plugin = {"targets": targets or [target(), target("http://b/api/chat")], **top}
    return declarative({"/chat": {"plugin": "ai-proxy-advanced", "config": plugin}})


def loaded(**top: Any):
    return load_config(config(**top))


def problems_of(document: dict) -> list[str]:
    with pytest.raises(ConfigError) as failure:
        load_config(document)
    return failure.value.problems


SEMANTIC = {
    "embeddings": {"model": {"provider": "openai", "name": "text-embedding-3-small",
                             "options": {"upstream_url": "http://e/v1/embeddings"}}},
    "vectordb": {"strategy": "redis", "dimensions": 64, "threshold": 0.5,
                 "distance_metric": "cosine"},
}  # fmt: skip


def test_defaults_are_kongs():
    route = loaded().routes[0]
    assert route.plugin.balancer == Balancer()
    assert (Balancer().algorithm, Balancer().max_fails, Balancer().fail_timeout) == (
        "round-robin", 0, 10000)
    assert (Balancer().hash_on_header, Balancer().slots) == ("X-Kong-LLM-Request-ID", 10000)
    assert (Balancer().latency_strategy, Balancer().tokens_count_strategy) == (
        "tpot", "total-tokens")
    assert route.upstream.retries == 5
    assert route.upstream.failover_criteria == ("error", "timeout")
    assert (route.upstream.connect_timeout, route.upstream.read_timeout) == (60000, 60000)
    assert [t.weight for t in route.plugin.targets] == [100, 100]


def test_every_field_is_read():
    balancer = {"algorithm": "consistent-hashing", "retries": 2, "connect_timeout": 100,
                "read_timeout": 200, "failover_criteria": ["error", "http_429", "non_idempotent"],
                "max_fails": 3, "fail_timeout": 500, "hash_on_header": "X-Session",
                "latency_strategy": "e2e", "tokens_count_strategy": "prompt-tokens",
                "slots": 64}  # fmt: skip
    route = loaded(balancer=balancer).routes[0]
    read = route.plugin.balancer
    assert (read.algorithm, read.max_fails, read.fail_timeout) == ("consistent-hashing", 3, 500)
    assert (read.hash_on_header, read.slots, read.latency_strategy) == ("X-Session", 64, "e2e")
    assert read.tokens_count_strategy == "prompt-tokens"
    assert route.upstream.retries == 2 and route.upstream.read_timeout == 200
    assert route.upstream.failover_criteria == ("error", "http_429", "non_idempotent")


def test_a_deck_dump_with_every_field_null_loads_with_the_defaults():
    nulls = dict.fromkeys(["algorithm", "retries", "max_fails", "fail_timeout", "hash_on_header",
                           "latency_strategy", "tokens_count_strategy", "slots",
                           "failover_criteria"])  # fmt: skip
    assert loaded(balancer=nulls).routes[0].plugin.balancer == Balancer()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("algorithm", "random", "expected one of: round-robin, consistent-hashing, "
         "least-connections, lowest-latency, lowest-usage, priority, semantic"),
        ("retries", 32768, "value should be between 0 and 32767"),
        ("retries", -1, "value should be between 0 and 32767"),
        ("max_fails", 40000, "value should be between 0 and 32767"),
        ("fail_timeout", 0, "value should be between 1 and 2147483646"),
        ("connect_timeout", 0, "value should be between 1 and 2147483646"),
        ("slots", 9, "value should be between 10 and 65536"),
        ("slots", 65537, "value should be between 10 and 65536"),
        ("slots", "many", "expected an integer"),
        ("latency_strategy", "p99", "expected one of: tpot, e2e"),
        ("hash_on_header", "X Session", "must be an HTTP header name: letters, digits and "
         "!#$%&'*+-.^_`|~ only"),
        ("retry", 3, "unknown field"),
    ],
)
def test_a_bad_balancer_field_is_one_line_naming_it(field, value, message):
    assert problems_of(config(balancer={field: value})) == [
        f"{PLUGIN}.balancer.{field}: {message}"]


def test_a_bad_failover_criterion_names_its_place():
    problems = problems_of(config(balancer={"failover_criteria": ["error", "http_418"]}))
    assert problems == [f"{PLUGIN}.balancer.failover_criteria[1]: expected one of: error, "
                        "timeout, invalid_header, http_403, http_404, http_429, http_500, "
                        "http_502, http_503, http_504, non_idempotent"]


@pytest.mark.parametrize("weight", [0, 65536])
def test_weights_are_kongs_range(weight):
    problems = problems_of(config([target(), target(weight=weight)]))
    assert problems == [f"{PLUGIN}.targets[1].weight: value should be between 1 and 65535"]


def test_targets_share_one_route_type():
    problems = problems_of(config([target(), target("http://b/api/generate", COMPLETIONS)]))
    assert problems == [
        f"{PLUGIN}.targets[1].route_type: must be the route type of targets[0] ('llm/v1/chat'): "
        "the client's request is checked against one route type before a target is chosen"]


def test_each_targets_errors_carry_its_path():
    broken = target()
    del broken["model"]["options"]["llama2_format"]
    problems = problems_of(config([target(), broken]))
    assert problems == [f"{PLUGIN}.targets[1].model.options.llama2_format: "
                        "must set 'model.options.llama2_format' for llama2 provider"]


def test_cost_usage_needs_every_targets_costs():
    costly = target()
    costly["model"]["options"].update(input_cost=1.0, output_cost=2.0)
    balancer = {"algorithm": "lowest-usage", "tokens_count_strategy": "cost"}
    problems = problems_of(config([costly, target()], balancer=balancer))
    assert problems == [
        f"{PLUGIN}.targets[1].model.options.{name}: required by tokens_count_strategy 'cost' "
        "(the usage is what the tokens cost)" for name in ("input_cost", "output_cost")]
    assert load_config(config([costly, costly], balancer=balancer))


def test_llm_accuracy_is_refused_for_lowest_usage_only():
    problems = problems_of(config(balancer={"algorithm": "lowest-usage",
                                            "tokens_count_strategy": "llm-accuracy"}))
    assert problems == [f"{PLUGIN}.balancer.tokens_count_strategy: 'llm-accuracy' is not "
                        "supported by proxyproof (total-tokens, prompt-tokens, completion-tokens "
                        "and cost are)"]
    assert loaded(balancer={"tokens_count_strategy": "llm-accuracy"})  # round-robin ignores it


def test_semantic_reads_embeddings_and_vectordb():
    targets = [target(description="maths and arithmetic"), target(description="CATCHALL")]
    plugin = load_config(config(targets, balancer={"algorithm": "semantic"}, **SEMANTIC)
                         ).routes[0].plugin  # fmt: skip
    assert plugin.embeddings == Embeddings("openai", "text-embedding-3-small",
                                           "http://e/v1/embeddings")  # fmt: skip
    assert plugin.vectordb == VectorDb(dimensions=64, threshold=0.5, distance_metric="cosine")
    assert [t.description for t in plugin.targets] == ["maths and arithmetic", "CATCHALL"]


def test_semantic_needs_both_records():
    problems = problems_of(config(balancer={"algorithm": "semantic"}))
    assert problems == [f"{PLUGIN}.embeddings: required field missing",
                        f"{PLUGIN}.vectordb: required field missing"]


def test_semantic_field_errors():
    bad = {
        "embeddings": {"model": {"provider": "cohere", "options": {"upstream_url": "ftp://x"}}},
        "vectordb": {"strategy": "redis", "dimensions": 0, "distance_metric": "manhattan"},
    }
    problems = problems_of(config(balancer={"algorithm": "semantic"}, **bad))
    assert problems == [
        f"{PLUGIN}.embeddings.model.provider: embeddings provider 'cohere' is not supported by "
        "proxyproof (only the OpenAI-style embeddings API: openai, mistral)",
        f"{PLUGIN}.embeddings.model.name: required field missing",
        f"{PLUGIN}.embeddings.model.options.upstream_url: unsupported scheme 'ftp' in url "
        "(expected http or https)",
        f"{PLUGIN}.vectordb.dimensions: value should be between 1 and 65536",
        f"{PLUGIN}.vectordb.threshold: required field missing",
        f"{PLUGIN}.vectordb.distance_metric: expected one of: cosine, euclidean",
    ]


def test_semantic_warnings():
    semantic = {**SEMANTIC, "vectordb": {**SEMANTIC["vectordb"], "redis": {"host": "r"}}}
    warnings = load_config(config([target(), target(description="CATCHALL")],
                                  balancer={"algorithm": "semantic"}, **semantic)).warnings
    assert warnings == [
        f"{PLUGIN}.vectordb.redis: is set but proxyproof keeps the description vectors in "
        "process (docs/balancer.md#semantic-routing)",
        f"{PLUGIN}.targets[0].description: is not set: semantic routing never chooses this "
        "target",
    ]


def test_embeddings_without_the_semantic_algorithm_is_a_warning():
    warnings = loaded(**SEMANTIC).warnings
    assert warnings == [f"{PLUGIN}.embeddings: is set but only the semantic algorithm uses it",
                        f"{PLUGIN}.vectordb: is set but only the semantic algorithm uses it"]


def test_the_banner_lists_every_target():
    (line,) = describe(loaded(balancer={"algorithm": "priority"}))
    assert line == ("/chat → ai-proxy-advanced llm/v1/chat priority: llama2/llama2 [ollama] → "
                    "http://a/api/chat; llama2/llama2 [ollama] → http://b/api/chat")
