"""The warning a mock prints when it listens beyond this machine's loopback.

The control API has no authentication unless ``--control-token`` is given, and its journal holds
request headers as received, credentials included: on a reachable address anyone who can connect
may read them, or script the mock's replies.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import TextIO


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name, as given to ``--host``) stays on this machine."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name (or "" = every address): assume it is reachable


def exposure_warning(host: str, port: int | str, *, token_set: bool) -> str | None:
    """The one warning line for a mock on ``host:port``; None on loopback."""
    if is_loopback(host):
        return None
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    where = f"the control API on {shown}:{port} is reachable from other machines"
    if token_set:
        return f"warning: {where}; it requires the control token"
    return (
        f"warning: {where}; its journal holds request headers, credentials included; pass "
        "--control-token TOKEN (or set PROXYPROOF_CONTROL_TOKEN) to require it on /__mock__/"
    )


def warn_if_exposed(
    host: str, port: int | str, *, token_set: bool, stream: TextIO | None = None
) -> str | None:
    """Print the warning to stderr (or ``stream``) when ``host`` is not loopback."""
    line = exposure_warning(host, port, token_set=token_set)
    if line is not None:
        print(line, file=stream or sys.stderr, flush=True)
    return line
