"""The indexed router against the rule it implements: every route compared with every other
(the scan below, which is how routing.py matched before it had an index); and 20,000 routes
load and match without scanning."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from proxy_support import CHAT, ai_proxy, declarative

from proxyproof.proxy_impl.config import load_config
from proxyproof.proxy_impl.model import PathRule, Route
from proxyproof.proxy_impl.routing import Router, _host_matches, _path_match, _rank


def scan(routes, method, host, path):
    """The specification: the best-ranked (route, path rule) of all that match."""
    best = None
    for order, route in enumerate(routes):
        if route.methods and method.upper() not in route.methods:
            continue
        if route.hosts and not _host_matches(route.hosts, host):
            continue
        for rule in route.paths or (None,):
            found = _path_match(rule, path)
            if found is None:
                continue
            rank = _rank(route, rule, order)
            if best is None or rank > best[0]:
                best = (rank, route, found)
    return None if best is None else (best[1], best[2])


PREFIXES = ["/", "/a", "/ab", "/a/b", "/b", "/a/bc", "/c/"]
REGEXES = ["~/a", "~/a/(?<x>[a-z]+)$", "~/(b|c)", "~/a/b", "~/[ab]+/c$", "~/ab?", "~/(?i:A)/B",
           "~(?i)/a/B"]
HOSTS = ["a.com", "b.com", "*.a.com", "a.*", "a.com:8000"]


@st.composite
def routes(draw):
    count = draw(st.integers(1, 12))
    built = []
    for index in range(count):
        texts = draw(st.lists(st.sampled_from(PREFIXES + REGEXES), max_size=3))
        rules = tuple(
            PathRule(t, re.compile(t[1:].replace("(?<", "(?P<"))) if t.startswith("~")
            else PathRule(t)
            for t in texts
        )
        built.append(Route(
            f"r{index}", rules,
            methods=tuple(draw(st.lists(st.sampled_from(["GET", "POST"]), max_size=2,
                                        unique=True))),
            hosts=tuple(draw(st.lists(st.sampled_from(HOSTS), max_size=2, unique=True))),
            regex_priority=draw(st.integers(0, 2)),
        ))  # fmt: skip
    return built


requests = st.tuples(
    st.sampled_from(["GET", "POST", "put"]),
    st.sampled_from([None, "", "a.com", "A.com:8000", "x.a.com", "b.com:80", "a.org", "[::1]:80"]),
    st.text(alphabet="/abcAB", max_size=8).map(lambda text: "/" + text),
)


@settings(max_examples=400, deadline=None)
@given(routes(), st.lists(requests, min_size=1, max_size=8))
def test_the_index_chooses_what_comparing_every_route_chooses(configured, asked):
    router = Router(configured)
    for method, host, path in asked:
        expected = scan(configured, method, host, path)
        found = router.match(method, host, path)
        if expected is None:
            assert found is None
        else:
            assert found is not None
            assert (found.route, found.captures) == expected


def test_twenty_thousand_routes_load_in_seconds_and_match_without_a_scan():
    count = 20_000
    config = declarative({
        f"/tenant-{index}/chat": ai_proxy(CHAT, "ollama", "http://127.0.0.1:9/api/chat")
        for index in range(count)
    })  # fmt: skip
    routes = config["services"][0]["routes"]
    routes.append({"name": "by-model", "paths": ["~/tenant-7/models/(?<model>[^/]+)/chat$"],
                   "plugins": routes[0]["plugins"]})  # fmt: skip
    started = time.perf_counter()
    router = Router(load_config(config).routes)
    loaded = time.perf_counter() - started
    assert loaded < 15, f"{count} routes took {loaded:.1f} s to load"  # ~2 s here; CI is slower

    assert router.match("POST", "h", "/tenant-19999/chat").route.name == "route-19999"
    assert router.match("POST", "h", "/tenant-1999/chat/x").route.name == "route-1999"
    assert router.match("POST", "h", "/tenant-7/models/m1/chat").captures["model"] == "m1"
    assert router.match("POST", "h", "/nothing") is None

    paths = [f"/tenant-{(index * 7919) % count}/chat" for index in range(2000)]
    started = time.perf_counter()
    for path in paths:
        router.match("POST", "h", path)
    per_match = (time.perf_counter() - started) / len(paths)
    # A scan of 20,000 routes took ~30 ms a match; the index takes ~10 µs.
    assert per_match < 0.002, f"{per_match * 1e6:.0f} µs per match"
