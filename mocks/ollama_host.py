"""``OLLAMA_HOST`` read as Ollama v0.11.4 reads it (``envconfig.Host``), for ``proxyproof mock
ollama``: ``127.0.0.1:11500``, ``0.0.0.0``, ``http://0.0.0.0:11434``, ``[::1]:11434``, ``:11500``.

Quotes and spaces around the value are dropped. Without a scheme the default port is 11434; with
``http://`` it is 80 and with ``https://`` 443. A path after the address is ignored. When the
address has no port, the whole of it is the host (an IP or a name); an empty host means
``127.0.0.1`` only when there is nothing at all, otherwise Go binds every interface (``:11500``).
A port that is not a number from 0 to 65535 falls back to the default.
"""

from __future__ import annotations

import ipaddress
import os

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort`` for the shapes an address takes (None where Go fails)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1 : end + 2] != ":":
            return None
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None
    host, _, port = hostport.partition(":")
    return host, port


def parse(value: str | None) -> tuple[str, int]:
    """The host and port ``value`` (an ``OLLAMA_HOST``) names."""
    text = (value or "").strip().strip("\"'").strip()
    default_port = str(DEFAULT_PORT)
    scheme, found, hostport = text.partition("://")
    if not found:
        hostport = text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport = hostport.split("/", 1)[0]
    split = _split_host_port(hostport)
    if split is None:
        host, port = DEFAULT_HOST, default_port
        try:
            host = str(ipaddress.ip_address(hostport.strip("[]")))
        except ValueError:
            if hostport:
                host = hostport
    else:
        host, port = split
        if not host:
            host = "0.0.0.0"  # Go's ":11500" listens on every interface
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    return host, int(port)


def from_environment() -> tuple[str, int] | None:
    """``OLLAMA_HOST``'s host and port, or None when it is unset or empty."""
    value = os.environ.get("OLLAMA_HOST")
    if value is None or not value.strip().strip("\"'").strip():
        return None
    return parse(value)
