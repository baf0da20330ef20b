"""Gateways the harness configures itself, through their own management APIs.

    from proxyproof.harness.adapters import GatewayError, KongGateway
"""

from __future__ import annotations


class GatewayError(RuntimeError):
    """The gateway cannot be used as asked; the message says why in words a user can act on."""


# After GatewayError: the adapters raise it.
from .kong import KongGateway  # noqa: E402

__all__ = ["GatewayError", "KongGateway"]
