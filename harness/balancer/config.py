"""The Kong declarative config of a balancer run: a service and a route per check
(``/proxyproof-balancer/<check id>``), each with an ``ai-proxy-advanced`` plugin whose
``targets[]`` point at the check's upstreams and whose ``balancer`` is the check's, as Kong's
3.13 schema spells it. Each check has its own plugin, so its balancer state (health, latency
averages, counters) starts fresh and no check sees another's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..catalogue.gateway_config import example_target
from .model import Check, TargetSpec

ROUTE_PREFIX = "/proxyproof-balancer/"
ROUTE_TYPE = "llm/v1/chat"


def route_path(check: Check) -> str:
    return ROUTE_PREFIX + check.id


def target(spec: TargetSpec, hosting: str, base_url: str) -> dict[str, Any]:
    """The hosting's example chat target, its upstream_url moved to ``base_url`` (path kept)."""
    found = example_target(hosting, ROUTE_TYPE)
    options = found["model"]["options"]
    old, new = urlsplit(options["upstream_url"]), urlsplit(base_url)
    options["upstream_url"] = urlunsplit((new.scheme, new.netloc, old.path, old.query, ""))
    found["weight"] = spec.weight
    return found


def plugin_config(check: Check, places: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """``places``: role -> (hosting key, base URL as the gateway reaches it)."""
    targets = [target(spec, *places[spec.role]) for spec in check.targets]
    return {"targets": targets, "balancer": dict(check.balancer)}


def build(checks: Iterable[Check], places: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    services = [{
        "name": check.id,
        "url": "http://127.0.0.1:9",  # Kong needs one; AI Proxy Advanced sends to the targets
        "routes": [{"name": check.id, "paths": [route_path(check)],
                    "plugins": [{"name": "ai-proxy-advanced",
                                 "config": plugin_config(check, places)}]}],
    } for check in checks]  # fmt: skip
    return {"_format_version": "3.0", "services": services}
