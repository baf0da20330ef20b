"""What goes from the client to the upstream and back: the upstream URL and query, the request
headers Kong forwards and adds, and the upstream headers the client gets. Pure functions.

Kong: ``kong/llm/drivers/llama2.lua`` (``configure_request``) sets the target from upstream_url;
nginx's proxy module forwards headers; see docs/kong-behaviour.md#upstream-request.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

from .behaviour import Behaviour

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade"}
)  # fmt: skip
# Client headers the proxy replaces rather than forwards (the body it sends is new JSON, never
# compressed: a client's Content-Encoding described the body it sent, not this one).
_NOT_FORWARDED = HOP_BY_HOP | {
    "host", "content-length", "content-type", "content-encoding", "expect"
}  # fmt: skip
# Upstream headers the proxy recomputes (the body may be re-encoded) or nginx hides by default.
_NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}


def target_url(
    upstream_url: str, client_query: Mapping[str, str], behaviour: Behaviour
) -> tuple[URL, MultiDict[str]]:
    """The upstream URL without its query, and the query to send with it.

    The upstream_url's path is used as is (``/`` when it has none); the client's query string is
    forwarded after the upstream_url's own (which Kong drops).
    """
    base, own_query = _split_url(upstream_url, behaviour.http_default_port_443)
    query: MultiDict[str] = MultiDict()
    if not behaviour.drop_upstream_url_query:
        query.extend(own_query)
    query.extend(client_query)
    return base, query


@lru_cache(maxsize=1024)  # an upstream_url without templates is the same on every request
def _split_url(upstream_url: str, http_default_port_443: bool) -> tuple[URL, MultiDictProxy[str]]:
    """Without an explicit port, Kong connects to 443 even for ``http://``; the fixed proxy uses
    the scheme's port."""
    url = URL(upstream_url)
    port = url.explicit_port
    if port is None:
        port = 443 if http_default_port_443 or url.scheme == "https" else 80
    base = URL.build(
        scheme=url.scheme,
        user=url.raw_user,
        password=url.raw_password,
        host=url.raw_host or "",
        port=port,
        path=url.raw_path or "/",
        encoded=True,
    )
    return base, url.query


def request_headers(
    client_headers: Mapping[str, str],
    *,
    client_ip: str | None,
    client_host: str | None,
    client_port: int | None,
    client_path: str,
    request_id: str,
    behaviour: Behaviour,
) -> CIMultiDict[str]:
    """Client headers forwarded the way Kong does, plus the proxy's own."""
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in client_headers.items():
        lowered = name.lower()
        if lowered in _NOT_FORWARDED:
            continue
        if lowered == "accept-encoding" and not behaviour.forward_client_accept_encoding:
            continue
        if lowered.startswith("x-forwarded-") or lowered == "x-real-ip":
            continue
        headers.add(name, value)
    headers["Content-Type"] = "application/json"
    if not behaviour.forward_client_accept_encoding or "Accept-Encoding" not in headers:
        headers["Accept-Encoding"] = "gzip, identity"
    forwarded_for = client_headers.get("X-Forwarded-For")
    if client_ip:
        headers["X-Real-IP"] = client_ip
        headers["X-Forwarded-For"] = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
    headers["X-Forwarded-Proto"] = "http"
    if client_host:
        headers["X-Forwarded-Host"] = _without_port(client_host)
    if client_port:
        headers["X-Forwarded-Port"] = str(client_port)
    headers["X-Forwarded-Path"] = client_path
    headers["X-Kong-Request-Id"] = request_id
    return headers


def response_headers(upstream: CIMultiDictProxy[str], *, keep_set_cookie: bool) -> CIMultiDict[str]:
    """Upstream response headers to hand to the client (Content-Type included)."""
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        lowered = name.lower()
        if lowered in _NOT_RETURNED or (lowered == "set-cookie" and not keep_set_cookie):
            continue
        headers.add(name, value)
    return headers


@lru_cache(maxsize=256)  # the Host a client sends is nearly always the same few names
def _without_port(host: str) -> str:
    try:
        return URL(f"http://{host}").raw_host or host
    except ValueError:
        return host
