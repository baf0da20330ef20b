"""The call to the model server: target URL, headers, the pooled client, retries, and what a
failure means for the client (kong_semantics §3.1, §7, §10.8, §10.14).

Failures follow Kong's core: connection refused or a broken response → 502, timeout → 504,
name resolution → 503. Retries follow nginx's ``proxy_next_upstream`` rules, which Kong uses: a
request that never reached the upstream may be tried again; one that did only when the method is
idempotent or ``non_idempotent`` is among the failover criteria.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

from .behaviour import Behaviour
from .model import UpstreamPolicy

# How a call to the upstream failed, and the status Kong answers the client with.
UpstreamFailureKind = Literal["refused", "broken", "timeout", "dns"]
FAILURE_STATUS: dict[UpstreamFailureKind, int] = {
    "refused": 502,
    "broken": 502,
    "timeout": 504,
    "dns": 503,
}

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade"}
)  # fmt: skip
# Client headers the proxy replaces rather than forwards.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "content-type", "expect"}
# Upstream headers the proxy recomputes (the body may be re-encoded) or nginx hides by default.
_NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}


class UpstreamFailure(Exception):
    def __init__(self, kind: UpstreamFailureKind, detail: str, *, sent: bool) -> None:
        super().__init__(detail)
        self.kind = kind
        self.sent = sent  # whether the request may have reached the upstream

    @property
    def status(self) -> int:
        return FAILURE_STATUS[self.kind]


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes


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


@dataclass
class Attempts:
    """How many calls were made and how long the last one waited for the upstream."""

    count: int = 0
    upstream_ms: int = 0


async def open_response(
    session: aiohttp.ClientSession,
    request: UpstreamRequest,
    query: MultiDict[str],
    policy: UpstreamPolicy,
    attempts: Attempts,
) -> aiohttp.ClientResponse:
    """Send the request, retrying as nginx would; the caller reads (and releases) the response."""
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=policy.connect_timeout / 1000,
        sock_read=policy.read_timeout / 1000,
    )
    criteria = policy.failover_criteria
    after_sending_ok = request.method.upper() in IDEMPOTENT or "non_idempotent" in criteria
    while True:
        attempts.count += 1
        last_try = attempts.count > policy.retries
        started = time.monotonic()
        try:
            response = await session.request(
                request.method,
                request.url,
                params=query,
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
            )
        except Exception as error:  # every client error is classified, none escapes raw
            failure = classify(error)
            attempts.upstream_ms = _ms_since(started)
            wanted = "timeout" if failure.kind == "timeout" else "error"
            retry = failure.kind != "dns" and wanted in criteria
            if retry and failure.sent:
                retry = after_sending_ok
            if last_try or not retry:
                raise failure from None
            continue
        attempts.upstream_ms = _ms_since(started)
        if not last_try and f"http_{response.status}" in criteria and after_sending_ok:
            response.release()
            continue
        return response


async def read_body(response: aiohttp.ClientResponse) -> bytes:
    """The whole (decompressed) body; a broken or stalled body is a 502/504 like Kong's."""
    try:
        return await response.read()
    except Exception as error:
        raise classify(error, sent=True) from None


def classify(error: BaseException, *, sent: bool = False) -> UpstreamFailure:
    """What a client-side exception means, in Kong's terms; ``sent``: the request had gone out
    (a connection error is then no proof the upstream never saw it)."""
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return UpstreamFailure("dns", str(error), sent=False)
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return UpstreamFailure("timeout", "timed out connecting", sent=sent)
    if isinstance(error, aiohttp.ClientConnectorError):
        return UpstreamFailure("refused", str(error), sent=sent)
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamFailure("timeout", "timed out reading the response", sent=True)
    return UpstreamFailure("broken", f"{type(error).__name__}: {error}", sent=True)


def _without_port(host: str) -> str:
    try:
        return URL(f"http://{host}").raw_host or host
    except ValueError:
        return host


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
