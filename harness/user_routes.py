"""The user's own kong.yaml: its llama2 routes, which hosting each one talks to, its upstreams
pointed at the mocks, and which catalogue cases apply to it (those that need no config of their
own: the route's own options, model and auth are what is checked)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import kong_config
from .catalogue.model import Case
from .hostings import BY_KEY

ROUTE_TYPES = {"llm/v1/chat": "chat", "llm/v1/completions": "completions"}


class UserConfigError(ValueError):
    pass


@dataclass(frozen=True)
class UserRoute:
    name: str
    path: str  # the first of the route's paths, as the client calls it
    route: str  # chat | completions
    hosting: str  # the hosting key its upstream looks like
    model: str | None
    locator: tuple[int, int]  # (route index in walk order, target index) to find it again
    targets: int = 1  # how many llama2 targets the route balances over

    def pointed_target(self, pointed: dict[str, Any]) -> dict[str, Any]:
        return _targets(pointed)[self.locator[0]][1][self.locator[1]]


def _targets(config: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each route with the llama2 AI targets attached to it, in a stable walk order."""
    found = []
    for route, plugins in kong_config.routes_with_plugins(config):
        targets = [t for p in plugins if p.get("name") in kong_config.AI_PLUGINS
                   for t in kong_config.targets_of(p)
                   if ((t.get("model") or {}).get("provider")) == "llama2"]
        found.append((route, targets))
    return found


def hosting_of(options: Mapping[str, Any]) -> str:
    """Which kind of server a llama2 target's upstream is (so which mock stands in for it)."""
    fmt = options.get("llama2_format")
    path = urlsplit(str(options.get("upstream_url", ""))).path
    if fmt == "ollama":
        return "ollama"
    if fmt == "openai":
        return "gguf"
    return "llamacpp" if path.rstrip("/").endswith(("/raw", "/completion")) else "huggingface"


def find(config: dict[str, Any]) -> list[UserRoute]:
    routes = []
    for index, (route, targets) in enumerate(_targets(config)):
        paths = route.get("paths") or []
        for position, target in enumerate(targets[:1]):  # the first target serves by default
            route_type = ROUTE_TYPES.get(target.get("route_type", ""))
            if not paths or route_type is None:
                continue
            model = target.get("model") or {}
            routes.append(UserRoute(
                name=route.get("name") or paths[0], path=paths[0], route=route_type,
                hosting=hosting_of(model.get("options") or {}), model=model.get("name"),
                locator=(index, position), targets=len(targets),
            ))  # fmt: skip
    return routes


def upstreams(config: dict[str, Any], routes: list[UserRoute]) -> tuple[set[str], list[str]]:
    """The mocks and model names that every target of ``routes`` needs: a balancer's failover
    targets may be of other kinds, and name other models, than the first."""
    walk = _targets(config)
    models = [(target.get("model") or {}) for route in routes
              for target in walk[route.locator[0]][1]]
    return ({BY_KEY[hosting_of(model.get("options") or {})].mock for model in models},
            [model["name"] for model in models if model.get("name")])


def point_at_mocks(config: dict[str, Any], routes: list[UserRoute],
                   mocks: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``config`` whose llama2 upstreams keep their paths but reach the mocks."""
    pointed = copy.deepcopy(config)
    walk = _targets(pointed)
    for route in routes:
        index, position = route.locator
        for target in walk[index][1]:  # every target of the route, not only the first
            options = target["model"]["options"]
            old = urlsplit(str(options.get("upstream_url", "")))
            base = urlsplit(mocks[BY_KEY[hosting_of(options)].mock])
            options["upstream_url"] = urlunsplit(
                (base.scheme, base.netloc, old.path or "/", old.query, ""))
    return pointed


def applies(case: Case, route: UserRoute) -> bool:
    """A case runs on a user's route when it needs no config of its own and fits the route. A
    scripted upstream failure does not apply to a route with several targets: the balancer may
    rightly fail over (and eject a target for the cases after it); the balancer profile checks
    that."""
    if case.script and route.targets > 1:
        return False
    return (case.hosting == route.hosting and case.route == route.route and not case.config
            and not case.service and case.upstream == "mock" and case.plugin == "ai-proxy"
            and "kong" not in case.features)
