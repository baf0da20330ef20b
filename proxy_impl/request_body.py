"""The client's body as bytes: read in chunks under a limit, then decoded from its
``Content-Encoding`` under the same limit (docs/security.md#request-bodies).

aiohttp's own inflating is off for the proxy (``server.py``): it has no size limit, and a body it
cannot inflate surfaces as an exception in the middle of a handler. Here a body never holds more
memory than its limit, however small it was on the wire. ``body_limit``, ``content_codings`` and
``decode`` are pure; ``read_limited`` is the one that waits on the network.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from aiohttp import StreamReader

from .behaviour import Behaviour

CEILING = 64 * 1024 * 1024  # the most any route reads, whatever max_request_body_size says
NGINX_BODY_BUFFER = 8192  # nginx keeps bodies up to this size in memory (Kong's default)
_CODINGS = {"identity": "identity", "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
_MAX_CODINGS = 3  # gzip over deflate over gzip is already more than any client sends


@dataclass(frozen=True)
class BodyRefusal:
    """The body cannot be read or decoded: the client gets ``status`` with ``message``."""

    status: int
    message: str


@dataclass(frozen=True)
class BodyLimit:
    """How many bytes a route reads, and whether going over is the ceiling's 413 (rather than the
    route's own limit, which counts as no body: docs/kong-behaviour.md#request-body)."""

    size: int
    is_ceiling: bool

    def over(self) -> BodyRefusal | None:
        if self.is_ceiling:
            return BodyRefusal(413, f"request body is larger than {self.size} bytes")
        return None


def body_limit(max_request_body_size: int, behaviour: Behaviour) -> BodyLimit:
    """The route's limit (0: none) bounded by ``CEILING``; in Kong mode at least nginx's buffer,
    which Kong takes whatever the limit (``body_limit_only_when_spilled``)."""
    if max_request_body_size == 0 or max_request_body_size > CEILING:
        return BodyLimit(CEILING, True)
    size = max_request_body_size
    if behaviour.body_limit_only_when_spilled:
        size = max(size, NGINX_BODY_BUFFER)
    return BodyLimit(size, False)


def content_codings(header: str | None) -> list[str] | BodyRefusal:
    """The codings of a ``Content-Encoding`` value, in the order they were applied."""
    names = [item.strip().lower() for item in (header or "").split(",") if item.strip()]
    codings = []
    for name in names:
        coding = _CODINGS.get(name)
        if coding is None:
            shown = name if len(name) <= 32 and name.isprintable() else name[:32].encode()
            return BodyRefusal(
                415, f"Content-Encoding {shown!r} is not supported: send gzip, deflate or identity"
            )
        if coding != "identity":
            codings.append(coding)
    if len(codings) > _MAX_CODINGS:
        return BodyRefusal(415, f"more than {_MAX_CODINGS} content codings on one body")
    return codings


async def read_limited(content: StreamReader, limit: int) -> bytes | None:
    """The whole body, or None as soon as more than ``limit`` bytes have arrived (the rest is
    left unread: aiohttp discards it after the answer)."""
    if content.is_eof():  # the body came with the head: nothing to wait for
        data = content.read_nowait()
        return None if len(data) > limit else data
    chunks: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def decode(raw: bytes, codings: list[str], limit: int) -> bytes | BodyRefusal:
    """``raw`` with its codings undone, last applied first; never more than ``limit`` bytes come
    out of a decompressor, so a small bomb cannot inflate into memory."""
    for coding in reversed(codings):
        if not raw:  # an empty body says nothing, whatever its header claims
            return raw
        try:
            inflated = _inflate(raw, coding, limit)
        except zlib.error:
            return BodyRefusal(400, f"request body is not valid {coding} data")
        if inflated is None:
            return BodyRefusal(413, f"request body inflates to more than {limit} bytes")
        raw = inflated
    return raw


def _inflate(data: bytes, coding: str, limit: int) -> bytes | None:
    """Inflated ``data`` (every gzip member), None past ``limit``; raises ``zlib.error``."""
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(_wbits(data, coding))
        out += inflater.decompress(data, limit + 1 - len(out))
        if len(out) > limit or inflater.unconsumed_tail:
            return None  # output stopped at the cap with input left: larger than the limit
        if not inflater.eof:
            raise zlib.error("truncated stream")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if coding != "gzip":  # only gzip has members to follow one another
            raise zlib.error("data after the end of the stream")


def _wbits(data: bytes, coding: str) -> int:
    if coding == "gzip":
        return 16 + zlib.MAX_WBITS
    # "deflate" is zlib-wrapped (RFC 9110), but some clients send a bare deflate stream: the
    # zlib header's first byte (CM=8, 32 KiB window) and its check tell one from the other.
    wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS
