"""The parts wired together: the bundled reference proxy as a gateway the harness is handed.

Only this module, the CLI and the pytest plugin import both ``proxy_impl`` and ``harness``
(``tests/test_boundaries.py``); the harness itself knows gateways only through this hand-over.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from .harness.gateway import InProcessGateway


def bundled_app(config: dict[str, Any], kong_compat: bool = False) -> web.Application:
    """The reference proxy serving ``config``: picklable (a module-level function), so the
    benchmark can start it in a process of its own."""
    from .proxy_impl import proxy_app

    return proxy_app(config, kong_compat=kong_compat)


def bundled_gateway(kong_compat: bool = False) -> InProcessGateway:
    mode = "Kong-compatible" if kong_compat else "reference"
    return InProcessGateway(
        functools.partial(bundled_app, kong_compat=kong_compat),
        f"proxyproof bundled proxy ({mode})",
    )
