"""Writing a buffered answer to the client (gzip when accepted), and the request's clock behind
Kong's latency headers."""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

NO_BODY_STATUSES = frozenset({204, 304})


@dataclass
class Timing:
    """The request's clock, for Kong's latency headers (integer milliseconds)."""

    started: float = field(default_factory=time.monotonic)
    proxied_at: float | None = None  # when the upstream request went out
    answered_at: float | None = None  # when the upstream body was in

    def mark_proxied(self) -> None:
        self.proxied_at = time.monotonic()

    def mark_answered(self) -> None:
        self.answered_at = time.monotonic()

    def proxied_headers(self) -> dict[str, str]:
        """Kong's headers for a response that came from the upstream."""
        proxied = self.proxied_at or self.started
        answered = self.answered_at or time.monotonic()
        return {
            "X-Kong-Upstream-Latency": str(_ms(answered - proxied)),
            "X-Kong-Proxy-Latency": str(_ms(proxied - self.started)),
        }

    def local_headers(self) -> dict[str, str]:
        """Kong's header for a response the proxy generated itself."""
        return {"X-Kong-Response-Latency": str(self.elapsed_ms())}

    def elapsed_ms(self) -> int:
        return _ms(time.monotonic() - self.started)


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


def accepts_gzip(accept_encoding: str | None) -> bool:
    for item in (accept_encoding or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


async def send(
    request: web.Request,
    status: int,
    body: bytes,
    headers: CIMultiDict[str],
    *,
    compress: bool = False,
) -> web.StreamResponse:
    """A buffered answer; compressed bodies go out chunked, as Kong sends them (no length)."""
    if status in NO_BODY_STATUSES:
        body = b""
    if compress and body:
        response = web.StreamResponse(status=status, headers=headers)
        response.headers["Content-Encoding"] = "gzip"
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(gzip.compress(body))
        await response.write_eof()
        return response
    return web.Response(status=status, body=body, headers=headers)
