"""Writing a buffered answer to the client, gzip-compressed when the client accepts it."""

from __future__ import annotations

import gzip

from aiohttp import web
from multidict import CIMultiDict

NO_BODY_STATUSES = frozenset({204, 304})


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
