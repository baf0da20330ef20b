"""Helpers for the reference proxy's tests: Kong fixtures, config builders, a running proxy."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import abc

from proxyproof.proxy_impl import proxy_app
from proxyproof.proxy_impl.behaviour import UrlTemplates
from proxyproof.serving import ThreadedServer

FIXTURES = Path(__file__).parent / "kong_fixtures"
CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
SEED_CHAT = {
    "messages": [
        {"role": "system", "content": "You are a mathematician"},
        {"role": "user", "content": "What is 1+1?"},
    ]
}
SEED_COMPLETION = {"prompt": "What is 1+1?"}


def kong_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def ai_proxy(
    route_type: str,
    llama2_format: str,
    upstream_url: str,
    *,
    name: str | None = "llama2",
    auth: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """An ai-proxy plugin config for the llama2 provider."""
    model: dict[str, Any] = {
        "provider": "llama2",
        "options": {"llama2_format": llama2_format, "upstream_url": upstream_url, **options},
    }
    if name is not None:
        model["name"] = name
    config: dict[str, Any] = {"route_type": route_type, "model": model}
    if auth is not None:
        config["auth"] = dict(auth)
    return config


def declarative(
    routes: Mapping[str, Mapping[str, Any]],
    *,
    plugin: str = "ai-proxy",
    service: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Kong declarative config: one service, one route per path, each with its plugin config.

    A value may also be ``{"plugin": name, "config": {...}, "route": {extra route fields}}``.
    """
    built = []
    for index, (path, spec) in enumerate(routes.items()):
        if "config" in spec:
            name, config, extra = spec.get("plugin", plugin), spec["config"], spec.get("route", {})
        else:
            name, config, extra = plugin, spec, {}
        built.append(
            {
                "name": f"route-{index}",
                "paths": [path],
                **extra,
                "plugins": [{"name": name, "config": config}],
            }
        )
    return {
        "_format_version": "3.0",
        "services": [{"name": "llm", "url": "http://localhost:32000", **(service or {}),
                      "routes": built}],
    }  # fmt: skip


def advanced(target: Mapping[str, Any], **top: Any) -> dict[str, Any]:
    """An ai-proxy-advanced config with one target (an ai-proxy config's fields)."""
    return {"targets": [dict(target)], **top}


@contextmanager
def running_proxy(
    config: Any,
    *,
    kong_compat: bool = False,
    url_templates: UrlTemplates = "encoded",
    resolver: abc.AbstractResolver | None = None,
    log: list[str] | None = None,
) -> Iterator[ThreadedServer]:
    sink = log.append if log is not None else None
    with ThreadedServer(
        lambda: proxy_app(config, kong_compat=kong_compat, url_templates=url_templates,
                          resolver=resolver, log=sink)
    ) as server:
        yield server


def post(url: str, body: Any = None, *, raw: bytes | None = None, **kwargs: Any) -> httpx.Response:
    """POST without compression unless asked (httpx asks for gzip by default)."""
    headers = {"Accept-Encoding": "identity", **kwargs.pop("headers", {})}
    if raw is not None:
        return httpx.post(url, content=raw, headers=headers, timeout=10, **kwargs)
    return httpx.post(url, json=body, headers=headers, timeout=10, **kwargs)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FailingResolver(abc.AbstractResolver):
    """Every name fails to resolve, as with NXDOMAIN (no network involved)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
        self.asked.append(host)
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None
