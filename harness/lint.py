"""``proxyproof lint``: the mistakes in a Kong declarative config that make AI Proxy's ``llama2``
provider fail on Kong, or behave differently there than on the bundled proxy, found before
anything runs.

Written from Kong's documented and observed behaviour (its schema's config errors, the llama2
driver's upstream target and auth, AI Proxy Advanced's targets; llama.cpp's server, which has no
raw mode: docs/kong-behaviour.md), not from the proxy's code:
the lint judges configs the proxy reads, so it must not share its reading of them.

``lint_config`` is pure, on the decoded YAML; ``lint_file`` reads a file first. Each ``Finding``
names the field (``services[0].routes[1].plugins[0].config.model.options.upstream_url``), what
goes wrong, the fix and a stable code. An error is a config that cannot work (Kong refuses it, or
requests through it fail); a warning is one that works but not the way its author likely means.
Plugins of other providers are only checked for their name and place.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import yaml

from proxyproof import fixtures
from proxyproof.harness.regex_risk import regex_risk

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    path: str  # the field, e.g. services[0].routes[1].plugins[0].config.model.options.upstream_url
    message: str
    fix: str
    code: str  # stable short id, e.g. raw-llamacpp-completion


def _error(path: str, code: str, message: str, fix: str) -> Finding:
    return Finding("error", path, message, fix, code)


def _warning(path: str, code: str, message: str, fix: str) -> Finding:
    return Finding("warning", path, message, fix, code)


# --- Kong's vocabulary (Kong 3.x schemas and docs) ----------------------------------------------

# Kong OSS's and Kong Enterprise's plugins, so that a config written for either is not flagged;
# only a name neither knows makes Kong refuse the whole config.
KONG_PLUGINS = fixtures.kong_plugin_names()

AI_PROXY = "ai-proxy"
AI_PROXY_ADVANCED = "ai-proxy-advanced"
CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
PRESERVE = "preserve"
LLAMA2_ROUTE_TYPES = (CHAT, COMPLETIONS, PRESERVE)
# Route types Kong's schema takes that the llama2 driver has no transformer for.
OTHER_ROUTE_TYPES = frozenset({
    "audio/v1/audio/speech", "audio/v1/audio/transcriptions", "audio/v1/audio/translations",
    "image/v1/images/edits", "image/v1/images/generations", "llm/v1/assistants", "llm/v1/batches",
    "llm/v1/embeddings", "llm/v1/files", "llm/v1/responses", "realtime/v1/realtime",
    "video/v1/videos/generations",
})  # fmt: skip
LLAMA2_FORMATS = ("raw", "openai", "ollama")
PARAM_LOCATIONS = ("query", "body")
TEMPLATE_SOURCES = ("headers", "uri_captures", "query_params")
FORMAT_VERSIONS = ("1.1", "2.1", "3.0")

# Field names per record, to catch misspellings (Kong rejects a field its schema does not know).
AI_PROXY_FIELDS = frozenset({
    "route_type", "auth", "model", "logging", "response_streaming", "model_name_header",
    "max_request_body_size", "llm_format", "genai_category",
})  # fmt: skip
AI_PROXY_ADVANCED_FIELDS = frozenset({
    "targets", "balancer", "embeddings", "vectordb", "response_streaming", "model_name_header",
    "max_request_body_size", "llm_format", "genai_category",
})  # fmt: skip
TARGET_FIELDS = frozenset({
    "route_type", "model", "auth", "logging", "weight", "description", "metadata",
})  # fmt: skip
MODEL_FIELDS = frozenset({"provider", "name", "options"})
OPTION_FIELDS = frozenset({
    "llama2_format", "upstream_url", "upstream_path", "max_tokens", "temperature", "top_p",
    "top_k", "input_cost", "output_cost", "mistral_format", "anthropic_version", "azure_instance",
    "azure_api_version", "azure_deployment_id", "embeddings_dimensions", "bedrock", "gemini",
    "huggingface", "cohere", "dashscope",
})  # fmt: skip
AUTH_FIELDS = frozenset({
    "header_name", "header_value", "param_name", "param_value", "param_location",
    "allow_override", "azure_use_managed_identity", "azure_client_id", "azure_client_secret",
    "azure_tenant_id", "gcp_use_service_account", "gcp_service_account_json", "aws_access_key_id",
    "aws_secret_access_key",
})  # fmt: skip
LOGGING_FIELDS = frozenset({"log_statistics", "log_payloads"})

# Kong's entity-check messages, quoted so users can search for them.
MUST_SET_FORMAT = "must set 'model.options.llama2_format' for llama2 provider"
MUST_SET_URL = "must set 'model.options.upstream_url' for self-hosted providers/models"
HEADER_PAIR = "all or none of these fields must be set: 'auth.header_name', 'auth.header_value'"
PARAM_TRIO = (
    "all or none of these fields must be set: "
    "'auth.param_name', 'auth.param_value', 'auth.param_location'"
)
LLAMACPP_NO_PROMPT = "[json.exception.out_of_range.403] key 'prompt' not found"

WANTED = (
    'a Kong declarative config: a YAML mapping with _format_version: "3.0" and services '
    "(with their routes) or routes"
)
WANTED_FIX = (
    "check the file; to start from a working config: proxyproof examples ollama > kong.yaml"
)

TEMPLATE = re.compile(r"\$\((.*?)\)")  # Kong's '%$%((.-)%)'
URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?$"
)


# --- the config's layout: entities and plugins with their paths ---------------------------------

Scope = tuple[str | None, str | None, str | None]  # the (route, service, consumer) a plugin is on


@dataclass(frozen=True)
class _Site:
    """One plugin entry, where it sits and what it applies to."""

    path: str
    plugin: Mapping[str, Any]
    scope: Scope


@dataclass
class _Layout:
    services: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    routes: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    consumers: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    sites: list[_Site] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # wrong shapes met on the way


def _shape_error(path: str, wanted: str, value: Any) -> Finding:
    return _error(
        path, "bad-structure", f"expected {wanted}, found {_kind(value)}",
        f"write {path} as {wanted}, as in Kong's declarative format",
    )  # fmt: skip


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _entries(
    container: Mapping[str, Any], key: str, path: str, problems: list[Finding]
) -> list[tuple[str, Mapping[str, Any]]]:
    """The mappings listed under ``container[key]``, each with its path; wrong shapes reported."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(_shape_error(path, "a list", value))
        return []
    found = []
    for index, item in enumerate(value):
        if isinstance(item, Mapping):
            found.append((f"{path}[{index}]", item))
        else:
            problems.append(_shape_error(f"{path}[{index}]", "a mapping", item))
    return found


def _record(
    container: Mapping[str, Any], key: str, path: str, problems: list[Finding]
) -> Mapping[str, Any]:
    """``container[key]`` as a mapping (empty when absent); a wrong shape is reported."""
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(_shape_error(path, "a mapping", value))
        return {}
    return value


def _identity(entity: Mapping[str, Any], keys: tuple[str, ...], fallback: str) -> str:
    """How other entries refer to ``entity``: its first set key among ``keys``, else its path."""
    for key in keys:
        if isinstance(entity.get(key), str) and entity[key]:
            return entity[key]
    return fallback


def _reference(value: Any) -> str | None:
    """A foreign key written as a name/id string or as ``{name: …}`` / ``{id: …}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("name", "id", "username"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def _plugin_sites(
    owner: Mapping[str, Any], path: str, scope: Scope, problems: list[Finding]
) -> list[_Site]:
    return [
        _Site(plugin_path, plugin, scope)
        for plugin_path, plugin in _entries(owner, "plugins", f"{path}.plugins", problems)
    ]


def _layout(document: Mapping[str, Any]) -> _Layout:
    layout = _Layout()
    problems = layout.problems
    for service_path, service in _entries(document, "services", "services", problems):
        layout.services.append((service_path, service))
        for route_path, route in _entries(service, "routes", f"{service_path}.routes", problems):
            layout.routes.append((route_path, route))
            scope = (_identity(route, ("name",), route_path), None, None)
            layout.sites += _plugin_sites(route, route_path, scope, problems)
        scope = (None, _identity(service, ("name",), service_path), None)
        layout.sites += _plugin_sites(service, service_path, scope, problems)
    for route_path, route in _entries(document, "routes", "routes", problems):
        layout.routes.append((route_path, route))
        scope = (_identity(route, ("name",), route_path), None, None)
        layout.sites += _plugin_sites(route, route_path, scope, problems)
    for consumer_path, consumer in _entries(document, "consumers", "consumers", problems):
        layout.consumers.append((consumer_path, consumer))
        scope = (None, None, _identity(consumer, ("username", "custom_id"), consumer_path))
        layout.sites += _plugin_sites(consumer, consumer_path, scope, problems)
    for plugin_path, plugin in _entries(document, "plugins", "plugins", problems):
        route, service, consumer = (
            _reference(plugin.get(k)) for k in ("route", "service", "consumer")
        )
        layout.sites.append(_Site(plugin_path, plugin, (route, service, consumer)))
    return layout


# --- document-level checks ----------------------------------------------------------------------


def _format_version(document: Mapping[str, Any]) -> list[Finding]:
    path = "_format_version"
    value = document.get(path)
    fix = 'write _format_version: "3.0" (quoted) at the top of the file'
    if value is None:
        return [_error(path, "format-version", "no _format_version: Kong refuses the config", fix)]
    if not isinstance(value, str):
        message = f'_format_version is {_kind(value)} ({value!r}); Kong wants the string "3.0"'
        return [_error(path, "format-version", message, fix)]
    if value not in FORMAT_VERSIONS:
        message = f"_format_version {value!r} is not one Kong reads ({', '.join(FORMAT_VERSIONS)})"
        return [_error(path, "format-version", message, fix)]
    return []


def _nothing_to_serve(layout: _Layout, source: str) -> list[Finding]:
    if layout.routes:
        return []
    return [_warning(
        source, "no-routes",
        "no routes: Kong would answer every request with 404 'no Route matched'",
        "add a service with routes, each with an ai-proxy plugin (see `proxyproof examples`)",
    )]  # fmt: skip


def _duplicate_names(entities: list[tuple[str, Mapping[str, Any]]], kind: str) -> list[Finding]:
    seen: dict[str, str] = {}
    findings = []
    for path, entity in entities:
        name = entity.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            findings.append(_error(
                f"{path}.name", f"duplicate-{kind}-name",
                f"{kind} name {name!r} is already used by {seen[name]}; Kong wants {kind} names "
                "unique and refuses the config",
                f"rename one of the two {kind}s",
            ))  # fmt: skip
        else:
            seen[name] = path
    return findings


def _unknown_references(document: Mapping[str, Any], layout: _Layout) -> list[Finding]:
    """Top-level routes and plugins name their service/route/consumer; the names must exist."""
    known = {
        "service": _names(layout.services, ("name", "id")),
        "route": _names(layout.routes, ("name", "id")),
        "consumer": _names(layout.consumers, ("username", "custom_id", "id")),
    }
    findings = []
    top_level = [
        *[(path, entity, ("service",)) for path, entity in _top_level(document, "routes")],
        *[
            (path, entity, ("route", "service", "consumer"))
            for path, entity in _top_level(document, "plugins")
        ],
    ]
    for path, entity, keys in top_level:
        for key in keys:
            name = _reference(entity.get(key))
            if name is not None and name not in known[key]:
                findings.append(_error(
                    f"{path}.{key}", "unknown-reference",
                    f"no {key} is named {name!r}; Kong refuses a reference it cannot resolve",
                    f"use the name of a {key} defined in this file, or define it",
                ))  # fmt: skip
    return findings


def _top_level(document: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    return _entries(document, key, key, [])  # shape problems are reported by _layout


def _names(entities: list[tuple[str, Mapping[str, Any]]], keys: tuple[str, ...]) -> set[str]:
    return {e[k] for _, e in entities for k in keys if isinstance(e.get(k), str)}


def _plugin_name(site: _Site, known: Collection[str]) -> list[Finding]:
    name = site.plugin.get("name")
    path = f"{site.path}.name"
    if not isinstance(name, str) or not name:
        return [_error(
            path, "unknown-plugin", "plugin without a name; Kong refuses the config",
            "name the plugin, e.g. name: ai-proxy",
        )]  # fmt: skip
    if name in known:
        return []
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    fix = (
        f"did you mean {close[0]!r}?"
        if close
        else "use a plugin Kong bundles; a custom plugin must be installed and listed in "
        "KONG_PLUGINS"
    )
    message = f"unknown plugin {name!r}: Kong refuses a config naming a plugin it does not have"
    return [_error(path, "unknown-plugin", message, fix)]


def _duplicate_plugins(sites: list[_Site]) -> list[Finding]:
    seen: dict[tuple[str, Scope], str] = {}
    findings = []
    for site in sites:
        name = site.plugin.get("name")
        if not isinstance(name, str):
            continue
        key = (name, site.scope)
        if key in seen:
            findings.append(_error(
                site.path, "duplicate-plugin",
                f"a second {name!r} plugin on {_describe(site.scope)} (the first is "
                f"{seen[key]}); Kong allows one per route/service/consumer and refuses the config",
                "merge the two into one; for several models on one route use ai-proxy-advanced "
                "with several targets",
            ))  # fmt: skip
        else:
            seen[key] = site.path
    return findings


def _describe(scope: Scope) -> str:
    kinds = ("route", "service", "consumer")
    parts = [f"{kind} {name!r}" for kind, name in zip(kinds, scope, strict=True) if name]
    return " and ".join(parts) if parts else "the global scope"


# --- llama2 targets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """One AI Proxy model configuration: ai-proxy's config, or one ai-proxy-advanced target."""

    path: str
    fields: Mapping[str, Any]
    known_fields: frozenset[str]


def _ai_targets(site: _Site) -> tuple[list[_Target], list[Finding]]:
    """The ``llama2`` targets of an AI Proxy plugin, and the shape problems met."""
    problems: list[Finding] = []
    name = site.plugin.get("name")
    config = _record(site.plugin, "config", f"{site.path}.config", problems)
    if name == AI_PROXY:
        targets = [_Target(f"{site.path}.config", config, AI_PROXY_FIELDS)]
    elif name == AI_PROXY_ADVANCED:
        entries = _entries(config, "targets", f"{site.path}.config.targets", problems)
        targets = [_Target(path, target, TARGET_FIELDS) for path, target in entries]
    else:
        return [], []
    llama2 = [t for t in targets if _provider(t.fields) == "llama2"]
    if name == AI_PROXY_ADVANCED and llama2:
        problems += _misspelt(config, AI_PROXY_ADVANCED_FIELDS, f"{site.path}.config")
    return llama2, problems


def _provider(target: Mapping[str, Any]) -> Any:
    model = target.get("model")
    return model.get("provider") if isinstance(model, Mapping) else None


def _target_findings(target: _Target) -> list[Finding]:
    path, fields = target.path, target.fields
    problems: list[Finding] = []
    model = _record(fields, "model", f"{path}.model", problems)
    options = _record(model, "options", f"{path}.model.options", problems)
    auth = _record(fields, "auth", f"{path}.auth", problems)
    logging = _record(fields, "logging", f"{path}.logging", problems)
    llama2_format = options.get("llama2_format")
    route_type = fields.get("route_type")
    return [
        *problems,
        *_route_type(path, route_type),
        *_llama2_format(f"{path}.model.options.llama2_format", llama2_format),
        *_upstream_url(f"{path}.model.options.upstream_url", options.get("upstream_url"),
                       llama2_format, route_type),
        *_auth(f"{path}.auth", auth, llama2_format),
        *_templates(f"{path}.model", model, options, llama2_format),
        *_vault_references(path, fields),
        *_misspelt(fields, target.known_fields, path),
        *_misspelt(model, MODEL_FIELDS, f"{path}.model"),
        *_misspelt(options, OPTION_FIELDS, f"{path}.model.options"),
        *_misspelt(auth, AUTH_FIELDS, f"{path}.auth"),
        *_misspelt(logging, LOGGING_FIELDS, f"{path}.logging"),
    ]  # fmt: skip


def _route_type(path: str, route_type: Any) -> list[Finding]:
    path = f"{path}.route_type"
    if route_type is None:
        return [_error(
            path, "route-type-missing", "no route_type: Kong requires one and refuses the config",
            f"set route_type: {CHAT} (messages) or {COMPLETIONS} (prompt)",
        )]  # fmt: skip
    if route_type in LLAMA2_ROUTE_TYPES:
        return []
    if route_type in OTHER_ROUTE_TYPES:
        message = (
            f"route_type {route_type!r} has no llama2 transformer: every request fails; the "
            f"llama2 provider serves {CHAT} and {COMPLETIONS}"
        )
    else:
        message = (
            f"route_type {route_type!r} is not one Kong knows ({', '.join(LLAMA2_ROUTE_TYPES)} "
            "for llama2); Kong refuses the config"
        )
    fix = f"use route_type: {CHAT} or {COMPLETIONS}"
    close = difflib.get_close_matches(str(route_type), LLAMA2_ROUTE_TYPES, n=1, cutoff=0.6)
    if close:
        fix = f"did you mean {close[0]!r}?"
    return [_error(path, "route-type-invalid", message, fix)]


def _llama2_format(path: str, value: Any) -> list[Finding]:
    formats = ", ".join(LLAMA2_FORMATS)
    if value is None:
        return [_error(
            path, "llama2-format-missing", f"Kong refuses the config: {MUST_SET_FORMAT}",
            f"set llama2_format to what the server speaks: {formats} (ollama for Ollama's "
            "/api/chat, openai for OpenAI-compatible servers, raw for HF TGI-style servers)",
        )]  # fmt: skip
    if value not in LLAMA2_FORMATS:
        close = difflib.get_close_matches(str(value), LLAMA2_FORMATS, n=1, cutoff=0.5)
        return [_error(
            path, "llama2-format-invalid",
            f"llama2_format {value!r} is not one of {formats}; Kong refuses the config",
            f"did you mean {close[0]!r}?" if close else f"use one of {formats}",
        )]  # fmt: skip
    return []


# --- upstream_url -------------------------------------------------------------------------------


def _upstream_url(path: str, url: Any, llama2_format: Any, route_type: Any) -> list[Finding]:
    if url is None or url == "":
        return [_error(
            path, "upstream-url-missing", f"Kong refuses the config: {MUST_SET_URL}",
            "set upstream_url to the full URL of the model server's endpoint, e.g. "
            "http://127.0.0.1:11434/api/chat for Ollama chat",
        )]  # fmt: skip
    if not isinstance(url, str):
        return [_shape_error(path, "a URL string", url)]
    findings = _url_templates(path, url)
    if "://" not in TEMPLATE.sub("", url) and findings:
        return findings  # the whole URL comes from the request: nothing more to read
    concrete = TEMPLATE.sub("template", url)
    parts = URL.match(concrete)
    if parts is None or parts["scheme"].lower() not in ("http", "https") or not parts["authority"]:
        return [*findings, _error(
            path, "upstream-url-invalid",
            f"upstream_url {url!r} is not an absolute http(s) URL; Kong refuses the config",
            "write scheme, host, port and path, e.g. http://127.0.0.1:8080/v1/chat/completions",
        )]  # fmt: skip
    findings += _default_port(path, url, parts)
    if parts["query"]:
        findings.append(_warning(
            path, "upstream-query-ignored",
            f"Kong drops upstream_url's query string ({parts['query']!r}) and forwards the "
            "client's query instead",
            "have clients send the parameter, or set it on the server side",
        ))  # fmt: skip
    if route_type != PRESERVE:  # preserve sends the client's own path upstream
        findings += _endpoint_mismatch(path, parts["path"], llama2_format, route_type)
    return findings


def _url_templates(path: str, url: str) -> list[Finding]:
    """Templates let the request choose part of the upstream. In the scheme, host or port that is
    explicit but risky (a warning): the client picks who receives the configured auth."""
    found = list(TEMPLATE.finditer(url))
    if not found:
        return []
    scheme_end = url.find("://")
    authority_end = len(url) if scheme_end < 0 else _authority_end(url, scheme_end + 3)
    in_host = [m.group(0) for m in found if scheme_end < 0 or m.start() < authority_end]
    if in_host:
        return [_warning(
            path, "templated-upstream-host",
            f"{', '.join(in_host)} puts a client's value in the upstream's scheme, host or port. "
            "The bundled proxy takes only a host name or port number there, but the client "
            "still chooses which server receives the request and its configured auth; Kong "
            "substitutes the value raw, so there the client supplies the entire URL",
            "write a fixed scheme://host:port; route different models with separate routes, or "
            "ai-proxy-advanced targets. Keep the template only if every host a client may name "
            "is meant to receive the auth",
        )]  # fmt: skip
    expressions = ", ".join(m.group(0) for m in found)
    return [_warning(
        path, "templated-upstream-path",
        f"{expressions} lets a client choose part of the upstream path or query. Note that Kong "
        "itself replaces the whole upstream_url with the resolved value, not only the $(...) "
        "part, so on Kong the client supplies the entire URL",
        "prefer one fixed upstream_url per route; if you keep the template, restrict the values "
        "the route accepts (e.g. a regex path with a named capture)",
    )]  # fmt: skip


def _authority_end(url: str, start: int) -> int:
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return min(ends) if ends else len(url)


def _default_port(path: str, url: str, parts: re.Match[str]) -> list[Finding]:
    """Kong connects to ``tonumber(port) or 443``: fine for https, wrong for http (§3.1)."""
    if parts["scheme"].lower() != "http" or _port(parts["authority"]) is not None:
        return []
    end = _authority_end(url, url.find("://") + 3)
    fixed = f"{url[:end]}:80{url[end:]}"
    return [_error(
        path, "http-default-port",
        "an http:// upstream_url without a port: Kong connects to port 443, not 80 (it "
        "defaults to 443 for every scheme), so it misses a server listening on 80",
        f"write the port explicitly: {fixed}",
    )]  # fmt: skip


def _port(authority: str) -> str | None:
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):  # IPv6 literal: [::1]:8080
        _, _, rest = host_port.partition("]")
        return rest[1:] if rest.startswith(":") and rest[1:] else None
    _, colon, port = host_port.rpartition(":")
    return port if colon and port else None


def _endpoint(path: str) -> str | None:
    """Which well-known API an upstream path is, by its ending."""
    path = path.rstrip("/")
    for suffix, kind in (
        ("/chat/completions", "openai-chat"),
        ("/api/chat", "ollama-chat"),
        ("/api/generate", "ollama-generate"),
        ("/completion", "llamacpp-completion"),
        ("/completions", "completions"),
    ):
        if path.endswith(suffix):
            return kind
    return None


def _endpoint_mismatch(
    path: str, url_path: str, llama2_format: Any, route_type: Any
) -> list[Finding]:
    endpoint = _endpoint(url_path)
    if endpoint is None or llama2_format not in LLAMA2_FORMATS:
        return []
    if llama2_format == "raw" and endpoint in ("llamacpp-completion", "completions"):
        openai_path = "/v1/completions" if route_type == COMPLETIONS else "/v1/chat/completions"
        return [_error(
            path, "raw-llamacpp-completion",
            f"llama2_format raw sends Kong's {{\"inputs\", \"parameters\"}} body to {url_path!r}, "
            "a llama.cpp completion endpoint; llama.cpp has no raw mode and wants 'prompt', so "
            f"every request fails with 400 \"{LLAMACPP_NO_PROMPT}\"",
            "put an adapter in front of llama.cpp that takes {inputs, parameters} and answers "
            "{\"data\": [{\"generated_text\": ...}]}, or use llama2_format: openai with "
            f"llama.cpp's {openai_path}",
        )]  # fmt: skip
    mismatch = _format_mismatch(endpoint, llama2_format, route_type)
    if mismatch is None:
        return []
    message, fix = mismatch
    return [_error(path, "format-path-mismatch", message, fix)]


def _format_mismatch(endpoint: str, fmt: str, route_type: Any) -> tuple[str, str] | None:
    """(message, fix) when the format cannot talk to the endpoint the path names."""
    ollama = endpoint in ("ollama-chat", "ollama-generate")
    if ollama and fmt != "ollama":
        return (
            f"the path is Ollama's native API, which llama2_format {fmt} does not speak",
            "use llama2_format: ollama, or Ollama's OpenAI routes (/v1/chat/completions, "
            "/v1/completions) with llama2_format: openai",
        )
    if fmt == "ollama" and not ollama:
        return (
            "llama2_format ollama speaks Ollama's native /api/chat and /api/generate; this path "
            "is an OpenAI-style or llama.cpp endpoint whose replies it cannot read",
            "use llama2_format: openai for OpenAI-compatible endpoints, or point at /api/chat "
            "(chat) or /api/generate (completions)",
        )
    if fmt == "ollama" and route_type == CHAT and endpoint == "ollama-generate":
        return ("a chat route sends 'messages', which /api/generate ignores",
                "point the chat route at /api/chat")  # fmt: skip
    if fmt == "ollama" and route_type == COMPLETIONS and endpoint == "ollama-chat":
        return ("a completions route sends 'prompt', which /api/chat ignores",
                "point the completions route at /api/generate")  # fmt: skip
    if fmt == "raw" and endpoint == "openai-chat":
        return (
            'llama2_format raw sends {"inputs", "parameters"}; an OpenAI-style chat endpoint '
            "wants 'messages' and answers 'choices'",
            "use llama2_format: openai for this endpoint",
        )
    if fmt == "openai" and endpoint == "llamacpp-completion":
        return (
            "llama.cpp's native /completion answers 'content', not the OpenAI 'choices' that "
            "llama2_format openai reads",
            "point at llama.cpp's /v1/chat/completions (chat) or /v1/completions (completions)",
        )
    if fmt == "openai" and route_type == CHAT and endpoint == "completions":
        return ("a chat route sends 'messages' to a completions endpoint, which wants 'prompt'",
                "point the chat route at /v1/chat/completions")  # fmt: skip
    if fmt == "openai" and route_type == COMPLETIONS and endpoint == "openai-chat":
        return ("a completions route sends 'prompt' to a chat endpoint, which wants 'messages'",
                "point the completions route at /v1/completions")  # fmt: skip
    return None


# --- auth ---------------------------------------------------------------------------------------


def _auth(path: str, auth: Mapping[str, Any], llama2_format: Any) -> list[Finding]:
    def present(key: str) -> bool:
        return auth.get(key) is not None

    findings = []
    header = [present(k) for k in ("header_name", "header_value")]
    if any(header) and not all(header):
        findings.append(_error(
            path, "auth-header-incomplete", f"Kong refuses the config: {HEADER_PAIR}",
            "set both header_name and header_value (e.g. Authorization / Bearer <key>), or neither",
        ))  # fmt: skip
    param = [present(k) for k in ("param_name", "param_value", "param_location")]
    if any(param) and not all(param):
        findings.append(_error(
            path, "auth-param-incomplete", f"Kong refuses the config: {PARAM_TRIO}",
            "set param_name, param_value and param_location together, or none of them",
        ))  # fmt: skip
    location = auth.get("param_location")
    if location is not None and location not in PARAM_LOCATIONS:
        findings.append(_error(
            f"{path}.param_location", "auth-param-location-invalid",
            f"param_location {location!r} is not query or body; Kong refuses the config",
            "use param_location: query (or header auth through header_name/header_value)",
        ))  # fmt: skip
    if location == "body" and llama2_format in ("raw", "ollama"):
        findings.append(_error(
            f"{path}.param_location", "body-auth-dropped",
            f"Kong adds a body auth parameter after converting the request to the "
            f"{llama2_format} format, so {auth.get('param_name')!r} never reaches the upstream "
            "(only llama2_format openai forwards it)",
            "send the key in a header (auth.header_name/header_value) or the query "
            "(param_location: query), or use llama2_format: openai",
        ))  # fmt: skip
    return findings


# --- templates and vault references -------------------------------------------------------------


def _templates(
    path: str, model: Mapping[str, Any], options: Mapping[str, Any], llama2_format: Any
) -> list[Finding]:
    findings = []
    name = model.get("name")
    if isinstance(name, str) and TEMPLATE.search(name):
        findings += _bad_templates(f"{path}.name", name, "model.name")
        if llama2_format != "raw":  # raw sends no model name upstream
            findings.append(_warning(
                f"{path}.name", "templated-model-name",
                f"model.name {name!r} lets a client choose the model Kong asks the upstream for: "
                "any model the server has becomes reachable through this route",
                "fix model.name to one model per route, unless choosing is the point",
            ))  # fmt: skip
    for key, value in options.items():
        if isinstance(value, str):
            findings += _bad_templates(f"{path}.options.{key}", value, value)
    return findings


def _bad_templates(path: str, value: str, field_label: str) -> list[Finding]:
    """Kong answers 400 to every request when a template is not ``source.key``."""
    findings = []
    for expression in TEMPLATE.findall(value):
        source, dot, key = expression.partition(".")
        if not dot or not key or "." in key:
            kong_says = f"cannot parse expression for field '{field_label}'"
        elif source not in TEMPLATE_SOURCES:
            kong_says = f"source '{source}' is not supported"
        else:
            continue
        findings.append(_error(
            path, "bad-template",
            f"$({expression}) cannot be resolved: every request gets 400 \"{kong_says}\"",
            f"write $(<source>.<key>) with source one of {', '.join(TEMPLATE_SOURCES)}, "
            "e.g. $(headers.x-model)",
        ))  # fmt: skip
    return findings


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value``, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _is_vault_reference(value: str) -> bool:
    """Kong's ``kong.vault.is_reference``: the whole value is ``{vault://…}``."""
    return value.startswith("{vault://") and value.endswith("}")


def _vault_references(path: str, fields: Mapping[str, Any]) -> list[Finding]:
    findings = []
    for string_path, value in _strings(fields, path):
        if _is_vault_reference(value):
            findings.append(_warning(
                string_path, "vault-reference",
                f"{value} is a Kong vault reference: Kong resolves it (with that vault set up), "
                "but the bundled proxy does not and sends it literally",
                "for runs on the bundled proxy use a config holding the value itself; keep the "
                "reference for Kong",
            ))  # fmt: skip
        elif "{vault://" in value:
            findings.append(_error(
                string_path, "vault-reference-embedded",
                "a vault reference inside a longer value: Kong resolves a reference only when it "
                "is the whole value, so it sends this text literally",
                "store the complete value in the vault (e.g. 'Bearer sk-...') and write the field "
                "as exactly '{vault://...}'",
            ))  # fmt: skip
    return findings


def _misspelt(record: Mapping[str, Any], known: frozenset[str], path: str) -> list[Finding]:
    """Keys Kong would reject that look like a known field; unknown but unlike any known field is
    left alone, since it may be a field of a newer Kong."""
    findings = []
    for key in record:
        if not isinstance(key, str) or key in known:
            continue
        normalised = key.strip().lower().replace("-", "_")
        close = [normalised] if normalised in known else difflib.get_close_matches(
            normalised, sorted(known), n=1, cutoff=0.8)  # fmt: skip
        if close:
            findings.append(_error(
                f"{path}.{key}", "unknown-field",
                f"unknown field {key!r}: Kong refuses the config",
                f"did you mean {close[0]!r}?",
            ))  # fmt: skip
    return findings


# --- entry points -------------------------------------------------------------------------------


# --- route paths ------------------------------------------------------------------------------

_REGEX_FIX = {
    "unsupported": "rewrite it without that construct: Kong 3's router (traditional_compatible) "
                   "matches route regexes with the Rust regex crate, which does not have it",
    "exponential": "make repeated parts unable to match the same text: e.g. [^/]+ for a path "
                   "segment, and no repetition of something that itself repeats",
    "polynomial": "separate the repetitions by a character they cannot read (e.g. /), or use "
                  "[^/]* instead of .*",
}  # fmt: skip


def _route_regexes(routes: list[tuple[str, Mapping[str, Any]]]) -> list[Finding]:
    """``~`` paths the bundled proxy refuses: constructs Kong's router lacks, or patterns that
    backtrack catastrophically in a backtracking matcher (harness/regex_risk.py)."""
    findings = []
    for route_path, route in routes:
        paths = route.get("paths")
        for index, text in enumerate(paths if isinstance(paths, list) else ()):
            if not isinstance(text, str) or not text.startswith("~"):
                continue
            risk = regex_risk(text[1:])
            if risk is None:
                continue
            what = "can backtrack catastrophically" if risk.kind != "unsupported" else "is refused"
            findings.append(_warning(
                f"{route_path}.paths[{index}]", f"route-regex-{risk.kind}",
                f"the regex {risk.detail}: it {what}; the bundled proxy refuses it at load",
                _REGEX_FIX[risk.kind],
            ))  # fmt: skip
    return findings


def _plugin_findings(sites: list[_Site], known: Collection[str]) -> list[Finding]:
    findings = []
    for site in sites:
        findings += _plugin_name(site, known)
        targets, problems = _ai_targets(site)
        findings += problems
        for target in targets:
            findings += _target_findings(target)
    return findings


def lint_config(
    document: Any, source: str = "<config>", *, custom_plugins: Iterable[str] = ()
) -> list[Finding]:
    """Findings for a decoded Kong declarative config, in document order. ``source`` names the
    document in document-wide findings; ``custom_plugins`` are plugin names installed besides
    Kong's own."""
    if not isinstance(document, Mapping):
        return [_not_a_config(source, "not-a-mapping", f"holds {_kind(document)}")]
    layout = _layout(document)
    known = KONG_PLUGINS | frozenset(custom_plugins)
    return [
        *_format_version(document),
        *layout.problems,
        *_nothing_to_serve(layout, source),
        *_duplicate_names(layout.services, "service"),
        *_duplicate_names(layout.routes, "route"),
        *_unknown_references(document, layout),
        *_route_regexes(layout.routes),
        *_plugin_findings(layout.sites, known),
        *_duplicate_plugins(layout.sites),
    ]


def lint_file(
    path: str | PathLike[str] | Traversable, *, custom_plugins: Iterable[str] = ()
) -> list[Finding]:
    """``lint_config`` on a YAML file; a file that cannot be read as a mapping is one error."""
    source = str(path)
    file = Path(path) if isinstance(path, str | PathLike) else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [_not_a_config(source, "unreadable-file", "no such file")]
    except IsADirectoryError:
        return [_not_a_config(source, "unreadable-file", "is a directory")]
    except UnicodeDecodeError:
        return [_not_a_config(source, "unreadable-file", "is not UTF-8 text")]
    except OSError as error:
        reason = error.strerror or str(error)
        return [_not_a_config(source, "unreadable-file", f"cannot be read ({reason})")]
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return [
            _not_a_config(source, "invalid-yaml", f"is not valid YAML ({_yaml_problem(error)})")
        ]
    if document is None:
        return [_not_a_config(source, "empty-config", "is empty")]
    return lint_config(document, source, custom_plugins=custom_plugins)


def _not_a_config(source: str, code: str, problem: str) -> Finding:
    """The one finding for a file that holds no config at all, saying what it should hold."""
    return _error(source, code, f"{problem}; expected {WANTED}", WANTED_FIX)


def _yaml_problem(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem}, line {mark.line + 1} column {mark.column + 1}" if mark else problem


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _counts(findings: Iterable[Finding]) -> tuple[int, int]:
    severities = [f.severity for f in findings]
    return severities.count("error"), severities.count("warning")


def format_findings(findings: Iterable[Finding]) -> str:
    """One line per finding, its fix indented below, and a summary line."""
    findings = list(findings)
    lines = []
    for finding in findings:
        lines.append(f"{finding.severity} {finding.path}: {finding.message}")
        lines.append(f"  fix: {finding.fix}")
    errors, warnings = _counts(findings)
    if findings:
        lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    else:
        lines.append("no problems found")
    return "\n".join(lines)


def findings_as_json(findings: Iterable[Finding]) -> str:
    """``{"errors": N, "warnings": M, "findings": [{severity, path, message, fix, code}, ...]}``."""
    findings = list(findings)
    errors, warnings = _counts(findings)
    report = {"errors": errors, "warnings": warnings, "findings": [asdict(f) for f in findings]}
    return json.dumps(report, indent=2, ensure_ascii=False)


def exit_status(findings: Iterable[Finding]) -> int:
    """1 when any finding is an error (the config cannot work), else 0."""
    return 1 if any(f.severity == "error" for f in findings) else 0
