"""A minimal HTTP/1.1 keep-alive client: the load generator's only way to talk to a server.

Why not aiohttp's client: per request it costs about as much CPU as aiohttp's server, so a load
generator built on it saturates its own core first and measures itself (on the 2-core dev box:
about 3,600 req/s from the aiohttp client against a mock that answers about 6,700 req/s to this
one). This client does only what the benchmark needs: POST a request prepared once, over a
connection kept alive, read a Content-Length or chunked response, and hand each piece of the body
to a callback as it arrives (the streaming measurements time those).

It talks to 127.0.0.1 only: a ``BenchRequest`` with any other host is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
# Set by the client itself; a caller's copy of them (e.g. replayed from a journal) is dropped.
_OWN_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


@dataclass(frozen=True)
class BenchRequest:
    """One request to send again and again: ``POST url`` with ``body`` and ``headers``."""

    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
            raise ValueError(f"the benchmark only targets http://{LOOPBACK}:PORT, not {self.url}")

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    def request_bytes(self) -> bytes:
        """The whole request on the wire, built once per run."""
        parts = urlsplit(self.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in self.headers
                  if name.lower() not in _OWN_HEADERS]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True)
class RawReply:
    status: int
    content_type: str
    body: bytes


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client can read."""


class Connection:
    """One kept-alive connection; opened on first use, reopened after the server closes it."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(
        self, request: bytes, on_data: Callable[[str, bytes], None] | None = None
    ) -> RawReply:
        """Send ``request`` and read the whole response; ``on_data(content_type, piece)`` sees
        each body piece as it arrives."""
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(LOOPBACK, self._port)
        assert self._reader is not None
        self._writer.write(request)
        status, headers = _parse_head(await self._reader.readuntil(b"\r\n\r\n"))
        pieces: list[bytes] = []
        content_type = headers.get("content-type", "")

        def take(data: bytes) -> None:
            pieces.append(data)
            if on_data is not None:
                on_data(content_type, data)

        keep_alive = headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await _read_chunked(self._reader, take)
        elif "content-length" in headers:
            length = _int(headers["content-length"], 10)
            if length:
                take(await self._reader.readexactly(length))
        else:  # delimited by the end of the connection
            take(await self._reader.read())
            keep_alive = False
        if not keep_alive:
            self.close()
        return RawReply(status, content_type, b"".join(pieces))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    status = _int(rest[:3], 10)
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_chunked(reader: asyncio.StreamReader, take: Callable[[bytes], None]) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = _int(size_line.split(b";", 1)[0].strip().decode("latin-1"), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the blank line
                pass
            return
        data = await reader.readexactly(size + 2)
        take(data[:-2])


def _int(text: str, base: int) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise ProtocolError(f"bad number in the response: {text[:20]!r}") from None
