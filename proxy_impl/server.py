"""The aiohttp application: one catch-all route into the pipeline, and the upstream client pool."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import abc, web

from proxyproof.serving import ONLY_HANDLER, expect_continue

from .balancer.route import Balancers
from .behaviour import UrlTemplates, behaviour_for
from .config import load_config
from .http_client import Client
from .model import Config
from .pipeline import ProxyState, handle
from .request_body import CEILING
from .resolver import UpstreamResolver
from .routing import Router

UNLIMITED_BODY_CAP = CEILING  # what "max_request_body_size: 0" still reads at most

STATE = web.AppKey("proxyproof_proxy", ProxyState)


def proxy_app(
    config: str | os.PathLike[str] | Mapping[str, Any] | Config,
    *,
    kong_compat: bool = False,
    url_templates: UrlTemplates = "encoded",
    resolver: abc.AbstractResolver | None = None,
    log: Callable[[str], None] | None = None,
    balancers: Balancers | None = None,
) -> web.Application:
    """The reference proxy for ``config`` (a ``Config``, a path, YAML text or a mapping).

    ``balancers``: where each AI Proxy Advanced route keeps its balancer state; give one with a
    seed and a clock to make choices and the circuit breaker deterministic (tests)."""
    if not isinstance(config, Config):
        config = load_config(config)
    # The pipeline reads each body itself, under its route's limit, and inflates gzip and deflate
    # with that limit (request_body.py): aiohttp's inflating has none, so it is off.
    app = web.Application(client_max_size=CEILING, handler_args={"auto_decompress": False})
    behaviour = behaviour_for(kong_compat, url_templates=url_templates)
    app[STATE] = state = ProxyState(Router(config.routes), behaviour, log,
                                    balancers=balancers if balancers is not None else Balancers())

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        state.client = Client(UpstreamResolver(resolver))
        yield
        await state.client.close()

    async def serve(request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get("Expect"):
            await expect_continue(request)
        return await handle(request, state)  # type: ignore[arg-type]

    app.cleanup_ctx.append(client_session)
    # Every request is the pipeline's: proxyproof's servers call ``serve`` without routing
    # (ONLY_HANDLER); the catch-all route serves the app run any other way. [\s\S], not ".": a
    # path with an encoded newline (%0A) is still the proxy's to answer (Kong's JSON 404, or its
    # route), never aiohttp's plain-text 404.
    app[ONLY_HANDLER] = serve
    app.router.add_route("*", r"/{tail:[\s\S]*}", serve, expect_handler=_answered_by_serve)
    return app


async def _answered_by_serve(request: web.Request) -> None:
    """The route's Expect handler: ``serve`` answers ``Expect`` itself, whichever way it runs."""
