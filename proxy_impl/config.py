"""Load a Kong declarative config (``_format_version: "3.0"``) as the routes this proxy serves.

What is not supported is said out loud: other plugins and Kong fields that change nothing here
are warnings (``Config.warnings``); unknown fields and unsupported AI settings are errors, raised
together as one ``ConfigError``. ``declarative`` reads the document; this module is the entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yarl import URL

from .config_fields import Problems
from .config_text import ConfigTextError, parse_config_text
from .declarative import read_routes
from .model import PROVIDER, AiPlugin, Config, Target


class ConfigError(ValueError):
    """The config cannot be served; ``problems`` lists every error, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> Config:
    """Load a Kong declarative config from a file path, YAML/JSON text or a decoded mapping.

    A ``str`` containing a newline is taken as the document itself, any other ``str`` as a path.
    """
    if isinstance(source, Mapping):
        document: Any = source
    else:
        text = source if isinstance(source, str) and "\n" in source else None
        if text is None:
            text = Path(source).read_text(encoding="utf-8")
        try:
            document = parse_config_text(text)
        except ConfigTextError as error:
            raise ConfigError([f"not valid YAML or JSON: {error}"]) from None
    if not isinstance(document, Mapping):
        found = "nothing (the file is empty)" if document is None else (
            f"a {type(document).__name__.replace('dict', 'mapping')}")
        raise ConfigError([f"expected a Kong declarative config: a mapping with "
                           f"_format_version: \"3.0\" and services (or routes); found {found}"])
    problems = Problems()
    routes = read_routes(document, problems)
    if problems.errors:
        raise ConfigError(problems.errors)
    if not routes:
        raise ConfigError(["no routes: the config must define at least one route"])
    return Config(tuple(routes), problems.warnings)


def describe(config: Config) -> list[str]:
    """One line per served route, for the CLI's start-up banner."""
    lines = []
    for route in config.routes:
        paths = ", ".join(rule.text for rule in route.paths) or "(any path)"
        extras = []
        if route.methods:
            extras.append("methods " + ",".join(route.methods))
        if route.hosts:
            extras.append("hosts " + ",".join(route.hosts))
        scope = f" ({'; '.join(extras)})" if extras else ""
        served = _describe_plugin(route.plugin) if route.plugin else "no AI plugin: answers 501"
        lines.append(f"{paths}{scope} → {served}")
    return lines


def _describe_plugin(plugin: AiPlugin) -> str:
    target = plugin.target
    if len(plugin.targets) == 1:
        return f"{plugin.kind} {target.route_type} {_describe_target(target)}"
    targets = "; ".join(_describe_target(one) for one in plugin.targets)
    return f"{plugin.kind} {target.route_type} {plugin.balancer.algorithm}: {targets}"


def _describe_target(target: Target) -> str:
    model = target.model_name or "(client's model)"
    return (
        f"{PROVIDER}/{model} [{target.options.llama2_format}] → "
        f"{masked_url(target.options.upstream_url)}"
    )


def masked_url(url: str) -> str:
    """Keep credentials someone put in an upstream_url out of banners and logs."""
    try:
        parsed = URL(url)
    except ValueError:
        return url
    if parsed.user or parsed.password or parsed.query_string:
        return str(parsed.with_user(None).with_query(None)) + ("?…" if parsed.query_string else "")
    return url
