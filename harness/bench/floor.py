"""The floor: the least a proxy written in Python does per request, measured beside the bundled one
(``proxyproof bench --gateway floor``).

A bare pass-through of the benchmark's own, on asyncio protocols and httptools' llhttp parser
both ways, with none of a gateway's checks, routing, headers or bookkeeping. Per request it does
the JSON work a translating proxy cannot skip: it parses the client's body, writes the upstream's
(``template``: the request the bundled proxy sent upstream, with the fields it shares with the
client's body taken from it), parses the upstream's reply and writes a reply of its own. A
stream is relayed as it comes, one chunk per read. Each client connection has one upstream
connection of its own, kept alive; requests on it are answered in turn.

What it answers is not checked by anything but the benchmark's capture: it is a yardstick, not a
gateway. It never borrows the proxy's code (the harness's boundary).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httptools

_KEPT_FROM_TEMPLATE = frozenset({"model", "stream"})  # the upstream's, not the client's
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True)
class Floor:
    """Where the floor sends, and the upstream bodies it fills in (JSON objects as bytes)."""

    upstream_url: str  # http://127.0.0.1:PORT/path
    template: bytes
    stream_template: bytes  # for a client body with "stream": true
    headers: tuple[tuple[str, str], ...] = ()  # sent upstream with every request

    def upstream_body(self, client_body: bytes) -> tuple[bytes, bool]:
        """The upstream request's body for ``client_body``, and whether it streams."""
        client = json.loads(client_body)
        stream = isinstance(client, dict) and client.get("stream") is True
        body = dict(self._templates[stream])  # only top-level fields are replaced
        if isinstance(client, dict):
            for name in body.keys() & client.keys() - _KEPT_FROM_TEMPLATE:
                body[name] = client[name]
        return _DUMPS(body).encode(), stream

    @cached_property
    def _templates(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The templates parsed once: (not streaming, streaming)."""
        return json.loads(self.template), json.loads(self.stream_template)


class _Upstream(asyncio.Protocol):
    """One kept-alive connection to the upstream, serving one client connection's requests."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._content_type = b"application/json"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.client.fail()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.upstream_lost(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._content_type = b"application/json"

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self._content_type = value

    def on_headers_complete(self) -> None:
        self.client.response_head(self._parser.get_status_code(), self._content_type)

    def on_body(self, body: bytes) -> None:
        self.client.response_body(body)

    def on_message_complete(self) -> None:
        self.client.response_end()


class _Client(asyncio.Protocol):
    """One client connection: requests parsed in order, each sent upstream once the one before
    it has been answered."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self._parser = httptools.HttpRequestParser(self)
        self._target = urlsplit(floor.upstream_url)
        self._head = self._request_head()
        self._transport: asyncio.Transport | None = None
        self._upstream: _Upstream | None = None
        self._body: list[bytes] = []
        self._waiting: deque[bytes] = deque()  # client bodies not sent upstream yet
        self._busy = False
        self._stream = False
        self._status = 200
        self._reply: list[bytes] = []
        self._keep_alive = True

    def _request_head(self) -> str:
        fields = [f"Host: {self._target.netloc}"]
        fields += [f"{name}: {value}" for name, value in self.floor.headers
                   if name.lower() not in ("host", "content-length", "transfer-encoding")]
        return f"POST {self._target.path or '/'} HTTP/1.1\r\n" + "".join(
            field + "\r\n" for field in fields)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._answer(400, b"application/json", b'{"message":"bad request"}', close=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.close()

    # httptools callbacks (the request)
    def on_message_begin(self) -> None:
        self._body = []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._keep_alive = self._parser.should_keep_alive()
        self._waiting.append(b"".join(self._body))
        if not self._busy:
            self._next()

    # requests, one at a time
    def _next(self) -> None:
        if not self._waiting or self._transport is None:
            return
        self._busy = True
        try:
            body, self._stream = self.floor.upstream_body(self._waiting.popleft())
        except ValueError:
            self._answer(400, b"application/json", b'{"message":"not JSON"}')
            return
        data = (self._head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self._status, self._reply = 200, []
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.write(data)
        else:
            asyncio.get_running_loop().create_task(self._connect(data))

    async def _connect(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, self._upstream = await loop.create_connection(
                lambda: _Upstream(self), self._target.hostname, self._target.port or 80)
        except OSError:
            self.fail()
            return
        assert self._upstream.transport is not None
        self._upstream.transport.write(data)

    def response_head(self, status: int, content_type: bytes) -> None:
        self._status = status
        if self._stream and status == 200 and self._transport is not None:
            self._transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type +
                                  b"\r\nTransfer-Encoding: chunked\r\n\r\n")

    def response_body(self, body: bytes) -> None:
        if self._stream and self._status == 200:
            if self._transport is not None:
                self._transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        else:
            self._reply.append(body)

    def response_end(self) -> None:
        if self._stream and self._status == 200:
            if self._transport is not None:
                self._transport.write(b"0\r\n\r\n")
            self._done()
            return
        try:
            value: Any = json.loads(b"".join(self._reply))
        except ValueError:
            value = None
        reply = {"object": "chat.completion", "choices": [{"index": 0, "upstream": value}]}
        self._answer(self._status, b"application/json", _DUMPS(reply).encode())

    def _answer(self, status: int, content_type: bytes, body: bytes, close: bool = False) -> None:
        if self._transport is not None:
            close = close or not self._keep_alive
            self._transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s"
                % (status, b"OK" if status == 200 else b"Error", content_type, len(body),
                   b"Connection: close\r\n" if close else b"", body))
            if close:
                self._transport.close()
        self._done()

    def _done(self) -> None:
        self._busy = False
        self._next()

    def fail(self) -> None:
        """The upstream broke: a 502, and the next request gets a new connection."""
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.close()
        self._upstream = None
        if self._busy:
            self._answer(502, b"application/json", b'{"message":"upstream failed"}')

    def upstream_lost(self, upstream: _Upstream) -> None:
        if upstream is self._upstream:
            self._upstream = None
            if self._busy:
                self.fail()


@dataclass
class FloorServer:
    """A floor listening on 127.0.0.1 in the running loop (what ``servers`` needs of a server:
    its URL, and ``stop``)."""

    server: asyncio.Server
    url: str

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_floor(floor: Floor, host: str = "127.0.0.1", port: int = 0) -> FloorServer:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Client(floor), host, port)
    bound = server.sockets[0].getsockname()
    return FloorServer(server, f"http://{bound[0]}:{bound[1]}")
