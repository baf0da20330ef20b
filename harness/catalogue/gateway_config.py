"""The one Kong declarative config that carries every selected case: a service and a route per
case (``/proxyproof/<case id>``), each with the hosting's example plugin config, the case's
changes merged in, and its upstream pointed at the running mock (or at a place that fails)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import kong_config
from ..hostings import BY_KEY
from ..oracle import RouteSetup
from .loader import merge
from .model import Case

ROUTE_PREFIX = "/proxyproof/"
# RFC 6761: ".invalid" never resolves, and resolvers may answer that without asking the network.
UNRESOLVABLE_HOST = "upstream.invalid"


@dataclass(frozen=True)
class Places:
    """Where upstreams are: each mock kind's base URL, and a loopback port nobody listens on."""

    mocks: Mapping[str, str]
    closed_port: int


def example_target(hosting: str, route_type: str) -> dict[str, Any]:
    """The ai-proxy config fields (a target) of the hosting's example route of ``route_type``."""
    config = kong_config.load(BY_KEY[hosting].example)
    for target in kong_config.ai_targets(config):
        if target.get("route_type") == route_type:
            return copy.deepcopy(target)
    raise LookupError(f"example {hosting} has no {route_type} route")


def case_target(case: Case, places: Places | None = None) -> dict[str, Any]:
    """The case's target config; with ``places``, its upstream_url pointed where it must go."""
    target = merge(example_target(case.hosting, case.route_type), case.config)
    if places is not None:
        options = target["model"]["options"]
        old = urlsplit(options["upstream_url"])
        path = case.upstream if case.upstream.startswith("/") else old.path
        if case.upstream == "unreachable":
            base = f"http://127.0.0.1:{places.closed_port}"
        elif case.upstream == "unresolvable":
            base = f"http://{UNRESOLVABLE_HOST}:80"
        else:
            base = places.mocks[BY_KEY[case.hosting].mock]
        new = urlsplit(base)
        options["upstream_url"] = urlunsplit((new.scheme, new.netloc, path, old.query, ""))
    return target


def route_setup(target: Mapping[str, Any]) -> RouteSetup:
    model = target.get("model") or {}
    options = model.get("options") or {}
    return RouteSetup(options.get("llama2_format", ""), target.get("route_type", ""),
                      model.get("name"), options, target.get("auth") or {})


def route_path(case: Case) -> str:
    return ROUTE_PREFIX + case.id


def build(cases: Iterable[Case], places: Places) -> dict[str, Any]:
    services = []
    for case in cases:
        target = case_target(case, places)
        config = {"targets": [target]} if case.plugin == "ai-proxy-advanced" else target
        services.append({
            "name": case.id,
            "url": "http://127.0.0.1:9",  # Kong needs one; AI Proxy sends to upstream_url
            **case.service,
            "routes": [{"name": case.id, "paths": [route_path(case)],
                        "plugins": [{"name": case.plugin, "config": config}]}],
        })  # fmt: skip
    return {"_format_version": "3.0", "services": services}
