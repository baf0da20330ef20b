"""A Kong declarative config document (``_format_version: "3.0"``) → the routes it serves.

Services hold routes, routes and services hold plugins; top-level ``routes`` and ``plugins`` refer
to their service or route by name or id, and a top-level plugin without one applies everywhere.
A route's AI plugin is the most specific one (route, then service, then global), as in Kong.
Problems go to ``Problems``; ``config.load_config`` decides what they mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxyproof import fixtures

from . import kong_schema as kong
from .config_fields import Problems, Record, join
from .model import AI_PLUGINS, DEFAULT_TIMEOUT_MS, AiPlugin, PathRule, Route, UpstreamPolicy
from .plugin_config import WRITE_TIMEOUT_NOTE, read_plugin
from .route_regex import RouteRegexError, compile_route_regex

_AiPlugins = list[tuple[str, Record]]  # (plugin name, its entity), in file order


@dataclass
class _PendingRoute:
    record: Record
    service_key: int | None  # index of the service, to find service-level plugins
    policy: UpstreamPolicy  # the service's timeouts and retries


@dataclass
class _Scopes:
    """Where each AI plugin applies: by route index, by service index, or everywhere."""

    by_route: defaultdict[int, _AiPlugins] = field(default_factory=lambda: defaultdict(list))
    by_service: defaultdict[int | None, _AiPlugins] = field(
        default_factory=lambda: defaultdict(list)
    )
    everywhere: _AiPlugins = field(default_factory=list)


def read_routes(document: Any, problems: Problems) -> list[Route]:
    """The routes ``document`` serves; every problem found is reported, not only the first."""
    top = Record.read(document, "", problems)
    if top is None:
        return []
    version = top.raw("_format_version")
    if not isinstance(version, str) or not version.startswith(("3.", "2.", "1.")):
        problems.error("_format_version", 'required, e.g. "3.0" (Kong declarative config)')
    for key in top.data:
        if key in kong.TOP_LEVEL_READ or key in kong.TOP_LEVEL_QUIET:
            continue
        if key in kong.TOP_LEVEL_ENTITIES:
            if top.data[key]:
                problems.warn(str(key), "entities of this kind are ignored by proxyproof")
        else:
            problems.error(str(key), "unknown field")

    routes: list[_PendingRoute] = []
    scopes = _Scopes()
    service_names: dict[str, int] = {}
    policies: list[UpstreamPolicy] = []
    for index, service in enumerate(top.records("services")):
        service.only(kong.SERVICE_FIELDS | kong.METADATA)
        _name(service, index, service_names)
        policies.append(_service_policy(service))
        enabled = service.boolean("enabled", True)
        for plugin in service.records("plugins"):
            _collect_plugin(plugin, scopes.by_service[index])
        for route in service.records("routes"):
            if enabled:
                routes.append(_PendingRoute(route, index, policies[index]))
            else:
                problems.warn(route.path, "belongs to a disabled service: not served")

    for route in top.records("routes"):
        index = _reference(route, "service", service_names)
        policy = policies[index] if index is not None else UpstreamPolicy()
        routes.append(_PendingRoute(route, index, policy))
    route_names: dict[str, int] = {}
    for index, pending in enumerate(routes):
        _name(pending.record, index, route_names)
        for plugin in pending.record.records("plugins"):
            _collect_plugin(plugin, scopes.by_route[index])

    for plugin in top.records("plugins"):
        route_index = _reference(plugin, "route", route_names)
        service_index = _reference(plugin, "service", service_names)
        if route_index is not None:
            _collect_plugin(plugin, scopes.by_route[route_index])
        elif service_index is not None:
            _collect_plugin(plugin, scopes.by_service[service_index])
        elif plugin.raw("route") is None and plugin.raw("service") is None:
            _collect_plugin(plugin, scopes.everywhere)

    read = (_read_route(pending, index, scopes, problems) for index, pending in enumerate(routes))
    return [route for route in read if route is not None]


def _name(entity: Record, index: int, names: dict[str, int]) -> None:
    """Make the entity findable by its name and its id, as references may use either."""
    for key in ("name", "id"):
        value = entity.raw(key)
        if isinstance(value, str):
            names[value] = index


def _reference(record: Record, key: str, names: Mapping[str, int]) -> int | None:
    """Resolve ``service: name`` / ``route: {name: ...}`` / ``{id: ...}`` to an index."""
    value = record.raw(key)
    if value is None:
        return None
    if not isinstance(value, str | Mapping):
        record.problems.error(record.at(key), "expected a name or a record with name or id")
        return None
    wanted = value if isinstance(value, str) else value.get("name") or value.get("id")
    if wanted not in names:
        record.problems.error(record.at(key), f"refers to '{wanted}', which is not defined")
        return None
    return names[wanted]


def _collect_plugin(plugin: Record, into: _AiPlugins) -> None:
    plugin.only(kong.PLUGIN_FIELDS | kong.METADATA)
    name = plugin.string("name", required=True)
    if name is None or not plugin.boolean("enabled", True):
        return
    if name not in AI_PLUGINS:
        if name in fixtures.kong_plugin_names():
            plugin.problems.warn(
                plugin.path, f"plugin '{name}' is not implemented by proxyproof: ignored"
            )
        else:  # Kong refuses the whole config
            plugin.problems.error(plugin.at("name"), f"plugin '{name}' not enabled; add it to "
                                  "the 'plugins' configuration property")
        return
    for scope in ("consumer", "consumer_group"):
        if plugin.raw(scope) is not None:
            plugin.problems.warn(
                plugin.at(scope),
                f"{name} scoped to a {scope.replace('_', ' ')} never applies "
                "(proxyproof has no consumers): ignored",
            )
            return
    if not _speaks_http(plugin):
        plugin.problems.warn(plugin.at("protocols"), "no http/https protocol: plugin ignored")
        return
    into.append((name, plugin))


def _speaks_http(entity: Record) -> bool:
    protocols = entity.strings("protocols")
    return protocols is None or bool({"http", "https"} & set(protocols))


def _service_policy(service: Record) -> UpstreamPolicy:
    """The service's fields checked, and its timeouts and retries, which its routes use."""
    service.string("url")
    service.string("host")
    service.string("path")
    service.string("protocol")
    service.integer("port", between=(0, 65535))
    given = {"retries": service.integer("retries", between=(0, 32767))}
    for key in ("connect_timeout", "read_timeout", "write_timeout"):
        given[key] = service.integer(key, between=(1, kong.MAX_TIMEOUT))
    service.warn_if_set({"write_timeout": DEFAULT_TIMEOUT_MS}, WRITE_TIMEOUT_NOTE)
    service.warn_if_set(
        {"client_certificate": None, "tls_verify": None, "tls_verify_depth": None,
         "ca_certificates": None, "tls_sans": None},
        "TLS settings are not implemented by proxyproof",
    )  # fmt: skip
    return UpstreamPolicy(**{key: value for key, value in given.items() if value is not None})


def _read_route(
    pending: _PendingRoute, index: int, scopes: _Scopes, problems: Problems
) -> Route | None:
    record = pending.record
    record.only(kong.ROUTE_FIELDS | kong.METADATA)
    before = len(problems.errors)
    name = record.string("name") or record.path
    paths = tuple(_read_paths(record))
    methods = tuple(method.upper() for method in record.strings("methods") or ())
    for method in methods:
        if method not in kong.HTTP_METHODS:
            problems.error(record.at("methods"), f"invalid method '{method}'")
    hosts = tuple(host.lower() for host in record.strings("hosts") or ())
    regex_priority = record.integer("regex_priority", 0) or 0
    if record.raw("expression") is not None:
        problems.error(
            record.at("expression"), "expressions-router routes are not supported by proxyproof"
        )
    if not _speaks_http(record):
        problems.warn(record.path, "no http/https protocol: not served")
        return None
    if not paths and not methods and not hosts:
        problems.error(record.path, "must set one of 'methods', 'hosts', 'headers', 'paths'")
    record.boolean("preserve_host", False)
    record.boolean("strip_path", True)
    record.warn_if_set(
        {"headers": None, "snis": None, "sources": None, "destinations": None},
        "route matching on it is not implemented by proxyproof (the route matches without it)",
    )
    record.warn_if_set(
        {"preserve_host": False}, "the upstream Host is always upstream_url's host in proxyproof"
    )

    chosen = _choose_plugin(
        scopes.by_route.get(index, []),
        scopes.by_service.get(pending.service_key, []),
        scopes.everywhere,
        record.path,
        problems,
    )
    plugin = None
    if chosen is None:
        problems.warn(
            record.path,
            "has no ai-proxy or ai-proxy-advanced plugin: proxyproof answers it with 501",
        )
    else:
        kind, entity = chosen
        plugin = read_plugin(kind, entity.raw("config"), entity.at("config"), problems)
    if len(problems.errors) > before:
        return None
    return Route(
        name=name,
        paths=paths,
        methods=methods,
        hosts=hosts,
        regex_priority=regex_priority,
        plugin=plugin,
        upstream=_with_balancer(pending.policy, plugin),
    )


def _read_paths(record: Record) -> list[PathRule]:
    rules = []
    for index, text in enumerate(record.strings("paths") or ()):
        where = join(record.at("paths"), index)
        if text.startswith("~"):
            try:
                compiled = compile_route_regex(text[1:])
            except RouteRegexError as error:
                record.problems.error(where, str(error))
                continue
            if compiled.warning is not None:
                record.problems.warn(where, compiled.warning)
            rules.append(PathRule(text, compiled.pattern))
        elif text.startswith("/"):
            rules.append(PathRule(text))
        else:
            record.problems.error(where, "should start with: / (fixed path) or ~/ (regex path)")
    return rules


def _choose_plugin(
    on_route: _AiPlugins,
    on_service: _AiPlugins,
    everywhere: _AiPlugins,
    where: str,
    problems: Problems,
) -> tuple[str, Record] | None:
    """The most specific AI plugin, per plugin name, as Kong picks one instance per plugin."""
    chosen: dict[str, tuple[str, Record]] = {}
    for scope in (everywhere, on_service, on_route):  # later (more specific) scopes win
        for name, plugin in scope:
            chosen[name] = (name, plugin)
    if len(chosen) > 1:
        problems.error(
            where,
            "has both ai-proxy and ai-proxy-advanced: only one AI proxy plugin may apply",
        )
        return None
    return next(iter(chosen.values()), None)


def _with_balancer(policy: UpstreamPolicy, plugin: AiPlugin | None) -> UpstreamPolicy:
    """Kong takes timeouts and retries from the route's service; AI Proxy Advanced's balancer
    settings, when given, take their place."""
    if plugin is None:
        return policy
    balancer = plugin.balancer
    return UpstreamPolicy(
        connect_timeout=balancer.connect_timeout or policy.connect_timeout,
        read_timeout=balancer.read_timeout or policy.read_timeout,
        write_timeout=balancer.write_timeout or policy.write_timeout,
        retries=balancer.retries if balancer.retries is not None else policy.retries,
        failover_criteria=balancer.failover_criteria or policy.failover_criteria,
    )
