"""Hostile configs (issue 9): route regexes judged at load, header fields without control
characters, Kong's ranges for retries and timeouts, and YAML errors that never echo a secret."""

from __future__ import annotations

import re

import pytest
from proxy_support import CHAT, ai_proxy, declarative

from proxyproof.proxy_impl import ConfigError, load_config
from proxyproof.proxy_impl.regex_ambiguity import cost
from proxyproof.proxy_impl.route_regex import compile_route_regex

ROUTE = "services[0].routes[0]"
PLUGIN = f"{ROUTE}.plugins[0].config"


def problems_of(config) -> list[str]:
    with pytest.raises(ConfigError) as failure:
        load_config(config)
    return failure.value.problems


def with_paths(*paths: str) -> dict:
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", "http://127.0.0.1:9/api/chat")})
    config["services"][0]["routes"][0]["paths"] = list(paths)
    return config


# --- route regexes ------------------------------------------------------------------------------


def test_the_issue_regex_is_refused_at_load_naming_its_field():
    (problem,) = problems_of(with_paths("/ok", "~/c/(a+)+b$"))
    assert problem.startswith(f"{ROUTE}.paths[1]: regex can backtrack catastrophically")
    assert "[^/]+" in problem  # says what to write instead


@pytest.mark.parametrize(
    "pattern",
    [r"/c/(a+)+b$", r"/(a*)*b", r"/(a|a)*b", r"/(a|ab|b)*c", r"/(a?a?)*b", r"/(\w+\s?)*$",
     r"/(a+a)+b", r"/(a{1,2})*b", r"/x(.*,)*y", r"/([a-z]+|[0-9a-f]+)*$", r"/((ab)*|a)*c"],
)  # fmt: skip
def test_exponential_patterns_are_refused(pattern):
    assert cost(pattern).exponential
    with pytest.raises(ValueError, match="catastrophically"):
        compile_route_regex(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"/models/(?<model>[^/]+)/chat$", r"/v1/.*", r"/(ab+)+c", r"/(/[a-z]+)+$", r"/(a|ab)*c",
     r"/(\d{1,3}\.){3}\d{1,3}$", r"/(?<tenant>[a-z0-9-]+)/(?<model>[^/]+)$", r"/(.*)/chat$",
     r"/(?i:chat)/(?<m>\w+)$", r"/a?b?c?$", r"/(a?)*b"],
)  # fmt: skip
def test_linear_patterns_load_quietly(pattern):
    assert compile_route_regex(pattern).warning is None


def test_polynomial_patterns_cubic_refused_quadratic_warned():
    assert cost(r"/.*.*.*x").degree == 3
    with pytest.raises(ValueError, match="power 3"):
        compile_route_regex(r"/.*.*.*x")
    quadratic = with_paths(r"~/(.*)/(.*)/x$")
    config = load_config(quadratic)
    assert [w for w in config.warnings if "quadratic" in w] == [
        f"{ROUTE}.paths[0]: " + compile_route_regex(r"/(.*)/(.*)/x$").warning
    ]


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [(r"/(a)\1", "backreferences"), (r"/(?=a)a", "look-ahead and look-behind"),
     (r"/a(?<!b)", "look-ahead and look-behind"), (r"/(?>a+)b", "atomic groups"),
     (r"/a++b", "possessive quantifiers"), (r"/(a)?(?(1)b|c)", "conditional groups")],
)  # fmt: skip
def test_what_kongs_router_cannot_match_is_refused(pattern, construct):
    (problem,) = problems_of(with_paths("/ok", "~" + pattern))
    assert problem == (f"{ROUTE}.paths[1]: regex uses {construct}, which Kong's router "
                       "(traditional_compatible) does not support")  # fmt: skip


def test_an_invalid_regex_still_says_why():
    (problem,) = problems_of(with_paths("/ok", "~/(?<broken"))
    assert problem.startswith(f"{ROUTE}.paths[1]: invalid regex: missing >")


def test_named_groups_in_kongs_spelling_become_captures():
    compiled = compile_route_regex(r"/models/(?<model>[^/]+)/chat$")
    assert compiled.pattern.match("/models/llama2/chat").groupdict() == {"model": "llama2"}
    assert re.compile(compiled.pattern.pattern)  # plain Python syntax from here on
