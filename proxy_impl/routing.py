"""Kong route matching: which configured route answers a request.

A route matches when its methods, hosts and one of its paths match. Paths are plain prefixes
(``/chat`` also matches ``/chat/x`` and ``/chatty``, as in Kong) or ``~`` regexes anchored at the
start of the path. Among matching routes, regex paths come first (higher ``regex_priority``
first), then the longest prefix; routes that also constrain hosts or methods win ties, then the
order of the file. Named regex groups become ``uri_captures`` for templates.

Matching is indexed so that it does not grow with the number of routes: prefix paths are kept
in a table by their text and looked up by each length of the request's path that some prefix
has, longest first; within one prefix, routes naming exact hosts are found by host. Regex paths
are indexed by the fixed text they start with, so a path only tries the regexes that can match
it. The order is the one ``_rank`` defines, the same as comparing every route with every other.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .model import PathRule, Route
from .route_regex import literal_prefix


@dataclass(slots=True)
class Match:
    route: Route
    captures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    """One path rule of one route (a route without paths has one, ``rule=None``), ranked."""

    order: int  # the entry's place when all are sorted best first: lower wins
    route: Route
    rule: PathRule | None


class _Bucket:
    """The entries sharing one prefix (or one regex start): by exact host, and the rest."""

    def __init__(self) -> None:
        self.by_host: defaultdict[str, list[_Entry]] = defaultdict(list)
        self.others: list[_Entry] = []  # no hosts, or a wildcard among them

    def add(self, entry: _Entry) -> None:
        hosts = entry.route.hosts
        if hosts and not any(_is_wildcard(host) for host in hosts):
            for host in dict.fromkeys(hosts):
                self.by_host[host].append(entry)
        else:
            self.others.append(entry)

    def candidates(self, names: tuple[str, ...]) -> Iterator[_Entry]:
        """This bucket's entries that may serve a request for one of ``names``, best first."""
        lists = [self.by_host[name] for name in names if name in self.by_host]
        return heapq.merge(self.others, *lists, key=_by_order) if lists else iter(self.others)


_RECENT = 4096  # answers of Router.match kept: a client's paths are nearly always a few
_UNKNOWN = object()


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._recent: dict[tuple[str, str | None, str], Match | None] = {}
        ranked = []
        for order, route in enumerate(routes):
            for rule in route.paths or (None,):
                ranked.append((_rank(route, rule, order), route, rule))
        ranked.sort(key=lambda item: item[0], reverse=True)
        self._prefixes: dict[str, _Bucket] = defaultdict(_Bucket)
        self._regexes: dict[str, _Bucket] = defaultdict(_Bucket)
        for order, (_, route, rule) in enumerate(ranked):
            entry = _Entry(order, route, rule)
            if rule is not None and rule.regex is not None:
                self._regexes[literal_prefix(rule.regex)].add(entry)
            else:
                self._prefixes[rule.text if rule is not None else ""].add(entry)
        self._prefixes = dict(self._prefixes)
        self._regexes = dict(self._regexes)
        self._prefix_lengths = sorted({len(text) for text in self._prefixes}, reverse=True)
        self._regex_lengths = sorted({len(text) for text in self._regexes}, reverse=True)

    def match(self, method: str, host: str | None, path: str) -> Match | None:
        """The route for a request (the same request line and host: the same answer, so the
        latest answers are kept; never one with captures, which the caller may read per call)."""
        key = (method, host, path)
        found = self._recent.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = self._match(method, host, path)
            if found is None or not found.captures:
                if len(self._recent) >= _RECENT:
                    self._recent.clear()
                self._recent[key] = found
        return found  # type: ignore[return-value]

    def _match(self, method: str, host: str | None, path: str) -> Match | None:
        method = method.upper()
        names = _host_names(host)
        # Every regex path outranks every prefix path: try the regexes that can match first.
        lists = [bucket.candidates(names)
                 for bucket in _buckets(self._regexes, self._regex_lengths, path)]
        for entry in heapq.merge(*lists, key=_by_order):
            if _allows(entry.route, method, host):
                assert entry.rule is not None
                found = _path_match(entry.rule, path)
                if found is not None:
                    return Match(entry.route, found)
        # Then the longest prefix with a route that takes this method and host.
        for bucket in _buckets(self._prefixes, self._prefix_lengths, path):
            for entry in bucket.candidates(names):
                if _allows(entry.route, method, host):
                    return Match(entry.route, {})
        return None


def _buckets(table: dict[str, _Bucket], lengths: Iterable[int], path: str) -> list[_Bucket]:
    """The buckets whose text starts ``path``, longest text first."""
    found = []
    for length in lengths:
        if length <= len(path):
            bucket = table.get(path[:length])
            if bucket is not None:
                found.append(bucket)
    return found


def _by_order(entry: _Entry) -> int:
    return entry.order


def _allows(route: Route, method: str, host: str | None) -> bool:
    if route.methods and method not in route.methods:
        return False
    return not route.hosts or _host_matches(route.hosts, host)


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


def _is_wildcard(host: str) -> bool:
    return host.startswith("*.") or host.endswith(".*")


def _host_names(host: str | None) -> tuple[str, ...]:
    """The names an exact route host may equal: the Host header with and without its port."""
    if not host:
        return ()
    full = name = host.lower()
    if not name.startswith("[") and name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    return (name,) if name == full else (name, full)


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
