"""Gateways the harness checks. The harness never imports a gateway's code: whoever wires the
parts together (the CLI, the pytest plugin) hands it a gateway, exactly as a user would.

A gateway takes a Kong declarative config and gives the URL its proxy listens on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from proxyproof.serving import ThreadedServer

from .resources import Resources, process_resources

# A Kong declarative config → the aiohttp application of a gateway serving it.
GatewayApp = Callable[[dict[str, Any]], web.Application]


class Gateway(Protocol):
    name: str

    def load(self, config: dict[str, Any]) -> str:
        """Apply ``config`` (replacing whatever was loaded before); return the proxy's URL."""
        ...

    def close(self) -> None: ...


class InProcessGateway:
    """A gateway served by the harness itself, from an application factory, on 127.0.0.1."""

    def __init__(self, app: GatewayApp, name: str) -> None:
        self.name = name
        self._app = app
        self._server: ThreadedServer | None = None

    def load(self, config: dict[str, Any]) -> str:
        self.close()
        self._server = ThreadedServer(lambda: self._app(config)).start()
        return self._server.url

    def resources(self) -> Resources:
        """This process's memory and descriptors (the gateway shares them with whatever else
        runs here) and the tasks in the gateway's own loop."""
        server = self._server
        return process_resources(os.getpid(), server.task_count if server else lambda: None)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> InProcessGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
