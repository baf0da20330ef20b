"""Helpers for the balancer's HTTP tests: AI Proxy Advanced configs over the mocks, the proxy with
its admin listener and an injectable clock, and reading the log lines and ``/status``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from proxy_support import CHAT, ai_proxy, declarative

from proxyproof.proxy_impl.admin import proxy_and_admin_apps
from proxyproof.proxy_impl.balancer.route import Balancers
from proxyproof.serving import ThreadedServer

PATHS = {"ollama": "/api/chat", "openai": "/v1/chat/completions", "raw": "/raw"}


class FakeClock:
    """The breaker's clock, moved by the test (the proxy reads it from its own thread)."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


def target(url: str, llama2_format: str = "ollama", name: str = "llama2", **fields: Any) -> dict:
    return {**ai_proxy(CHAT, llama2_format, url + PATHS[llama2_format], name=name), **fields}


def advanced_config(targets: list[dict], **balancer: Any) -> dict:
    plugin = {"targets": targets, "balancer": balancer}
    return declarative({"/chat": {"plugin": "ai-proxy-advanced", "config": plugin}})


@dataclass
class Served:
    url: str
    admin: str
    log: list[str] = field(default_factory=list)
    _logged: threading.Condition = field(default_factory=threading.Condition)

    def write(self, line: str) -> None:
        with self._logged:
            self.log.append(line)
            self._logged.notify_all()

    def wait_lines(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The log lines once there are ``count`` (a streamed answer's comes after its end)."""
        with self._logged:
            assert self._logged.wait_for(lambda: len(self.log) >= count, timeout), self.log
        return self.lines()

    def chat(self, body: dict | None = None, **kwargs: Any) -> httpx.Response:
        from proxy_support import SEED_CHAT, post

        return post(self.url + "/chat", body or SEED_CHAT, **kwargs)

    def status(self) -> list[dict[str, Any]]:
        """The targets of the one route, as ``GET /status`` shows them."""
        answer = httpx.get(self.admin + "/status", timeout=10).json()
        (route,) = answer["balancers"]
        return route["targets"]

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log]


@contextmanager
def balanced_proxy(
    config: dict, *, clock: Callable[[], float] = time.monotonic, seed: int = 1
) -> Iterator[Served]:
    served = Served("", "")
    proxy_factory, admin_factory = proxy_and_admin_apps(
        config, log=served.write, balancers=Balancers(seed=seed, clock=clock)
    )
    with ThreadedServer(proxy_factory) as proxy, ThreadedServer(admin_factory) as admin:
        served.url, served.admin = proxy.url, admin.url
        yield served
