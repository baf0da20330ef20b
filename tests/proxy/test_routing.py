"""Kong route matching: prefix paths (longest wins), `~` regex paths with captures, methods and
hosts."""

from __future__ import annotations

import re

from proxyproof.proxy_impl.model import PathRule, Route
from proxyproof.proxy_impl.routing import Router


def route(name, *paths, methods=(), hosts=(), regex_priority=0):
    rules = tuple(
        PathRule(p, re.compile(p[1:].replace("(?<", "(?P<"))) if p.startswith("~") else PathRule(p)
        for p in paths
    )
    return Route(name, rules, methods=methods, hosts=hosts, regex_priority=regex_priority)


def matched(router, path, method="POST", host="localhost"):
    found = router.match(method, host, path)
    return found.route.name if found else None


def test_longest_prefix_wins_and_prefix_is_a_plain_string_prefix():
    router = Router([route("short", "/llm"), route("long", "/llm/chat")])
    assert matched(router, "/llm/chat/completions") == "long"
    assert matched(router, "/llm/completions") == "short"
    assert matched(router, "/llmx") == "short"  # Kong's prefix match is not segment-aware
    assert matched(router, "/other") is None


def test_regex_paths_come_first_and_capture_groups():
    router = Router(
        [route("prefix", "/models"), route("regex", "~/models/(?<model>[a-z0-9-]+)/chat$")]
    )
    found = router.match("POST", "h", "/models/llama-2/chat")
    assert found.route.name == "regex"
    assert found.captures == {"model": "llama-2", "1": "llama-2"}
    assert matched(router, "/models/llama-2/chat/x") == "prefix"  # `$` anchors the end


def test_regex_priority_orders_regex_routes():
    router = Router([route("low", "~/a"), route("high", "~/a/b", regex_priority=10)])
    assert matched(router, "/a/b") == "high"


def test_methods_and_hosts_filter():
    router = Router(
        [
            route("post-only", "/chat", methods=("POST",)),
            route("hosted", "/chat", hosts=("*.example.com",)),
        ]
    )
    assert matched(router, "/chat", method="GET", host="api.example.com:8000") == "hosted"
    assert matched(router, "/chat", method="GET", host="localhost") is None
    # both match a POST to api.example.com: equal paths, the host-constrained route wins
    assert matched(router, "/chat", host="api.example.com") == "hosted"


def test_route_without_paths_matches_every_path():
    router = Router([route("any"), route("chat", "/chat")])
    assert matched(router, "/whatever") == "any"
    assert matched(router, "/chat") == "chat"
