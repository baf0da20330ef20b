"""Just enough reading of a Kong declarative config for the harness: which route path leads to
which AI target, and pointing every upstream_url at a running mock. Independent of proxy_impl."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from .oracle import RouteSetup

AI_PLUGINS = ("ai-proxy", "ai-proxy-advanced")


def load(path: Path | Traversable) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def routes_with_plugins(config: dict[str, Any]) -> Iterator[tuple[dict, list[dict]]]:
    for service in config.get("services") or []:
        for route in service.get("routes") or []:
            yield route, list(route.get("plugins") or []) + list(service.get("plugins") or [])
    for route in config.get("routes") or []:
        yield route, list(route.get("plugins") or [])


def targets_of(plugin: dict[str, Any]) -> list[dict[str, Any]]:
    config = plugin.get("config") or {}
    return config.get("targets") or [] if plugin["name"] == "ai-proxy-advanced" else [config]


def targets(config: dict[str, Any]) -> dict[str, RouteSetup]:
    """Route path → the (first) AI target serving it."""
    found = {}
    for route, plugins in routes_with_plugins(config):
        for plugin in plugins:
            if plugin.get("name") not in AI_PLUGINS or not targets_of(plugin):
                continue
            target = targets_of(plugin)[0]
            model = target.get("model") or {}
            options = model.get("options") or {}
            for path in route.get("paths") or []:
                found[path] = RouteSetup(
                    options.get("llama2_format", ""),
                    target.get("route_type", ""),
                    model.get("name"),
                    options,
                )
    return found


def point_at(config: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A copy of ``config`` whose upstream_urls keep their path but use ``base_url``'s host."""
    config = copy.deepcopy(config)
    new = urlsplit(base_url)
    for _route, plugins in routes_with_plugins(config):
        for plugin in plugins:
            if plugin.get("name") not in AI_PLUGINS:
                continue
            for target in targets_of(plugin):
                options = target["model"]["options"]
                old = urlsplit(options["upstream_url"])
                options["upstream_url"] = urlunsplit(
                    (new.scheme, new.netloc, old.path, old.query, old.fragment)
                )
    return config


def ai_targets(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every AI target (an ai-proxy config, or one of ai-proxy-advanced's targets), in order."""
    for _route, plugins in routes_with_plugins(config):
        for plugin in plugins:
            if plugin.get("name") in AI_PLUGINS:
                yield from targets_of(plugin)
