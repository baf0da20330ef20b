"""Kong route matching: which configured route answers a request.

A route matches when its methods, hosts and one of its paths match. Paths are plain prefixes
(``/chat`` also matches ``/chat/x`` and ``/chatty``, as in Kong) or ``~`` regexes anchored at the
start of the path. Among matching routes, regex paths come first (higher ``regex_priority``
first), then the longest prefix; routes that also constrain hosts or methods win ties, then the
order of the file. Named regex groups become ``uri_captures`` for templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .model import PathRule, Route


@dataclass(frozen=True)
class Match:
    route: Route
    captures: dict[str, str] = field(default_factory=dict)


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = list(routes)

    def match(self, method: str, host: str | None, path: str) -> Match | None:
        best: tuple[tuple[int, ...], Match] | None = None
        for order, route in enumerate(self._routes):
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
                    best = (rank, Match(route, found))
        return best[1] if best else None


def _path_match(rule: PathRule | None, path: str) -> dict[str, str] | None:
    if rule is None:
        return {}
    if rule.regex is None:
        return {} if path.startswith(rule.text) else None
    found = rule.regex.match(path)
    if found is None:
        return None
    captures = {name: value for name, value in found.groupdict().items() if value is not None}
    for number, value in enumerate(found.groups(), start=1):
        if value is not None:
            captures.setdefault(str(number), value)
    return captures


def _rank(route: Route, rule: PathRule | None, order: int) -> tuple[int, ...]:
    is_regex = rule is not None and rule.is_regex
    prefix_length = len(rule.text) if rule is not None and not is_regex else 0
    return (
        1 if is_regex else 0,
        route.regex_priority if is_regex else 0,
        prefix_length,
        1 if route.hosts else 0,
        1 if route.methods else 0,
        -order,
    )


def _host_matches(hosts: Sequence[str], host: str | None) -> bool:
    if not host:
        return False
    full = name = host.lower()
    if not name.startswith("[") and name.count(":") == 1:
        name = name.rsplit(":", 1)[0]  # Kong matches hosts with or without the port
    for wanted in hosts:
        if wanted in (name, full):
            return True
        if wanted.startswith("*.") and name.endswith(wanted[1:]):
            return True
        if wanted.endswith(".*") and name.startswith(wanted[:-1]):
            return True
    return False
