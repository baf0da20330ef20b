"""Gateway adapters: how the harness gets a Kong declarative config applied and a URL to call.

``BundledGateway`` runs proxyproof's reference proxy in-process through its public serving entry,
exactly as a user would start it; it is the only contact the harness has with ``proxy_impl``.
"""

from __future__ import annotations

from typing import Any

from proxyproof.serving import ThreadedServer


class BundledGateway:
    """``with BundledGateway(config) as gateway: gateway.url`` — the reference proxy."""

    name = "proxyproof reference proxy"

    def __init__(self, config: dict[str, Any], kong_compat: bool = False) -> None:
        from proxyproof.proxy_impl import proxy_app  # public entry

        self._server = ThreadedServer(lambda: proxy_app(config, kong_compat=kong_compat))

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> BundledGateway:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
