"""The proxy's HTTP/1.1 client for upstream calls: kept-alive pooled connections, the request
written in one send, the response parsed by llhttp (httptools), at most ``MAX_EXCHANGES``
exchanges under way at once (the next request waits for one to end).

Why not aiohttp's client: on the hot path it cost about 110 us of CPU per request, a third of
the whole mock behind it (docs/performance.md). This client does only what a reverse proxy
needs: no redirects, cookies, proxies or auto headers beyond ``Host`` and ``Content-Length``.
Bodies arrive inflated (gzip, deflate), as Kong translates them.

Errors: ``ConnectFailed`` before the request went out (``kind``: dns, refused, timeout);
``BadResponse`` for a response head that does not parse; ``ResponseTimeout`` when the upstream
is silent for ``read_timeout``; ``ConnectionBroken`` when it closes or resets the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import httptools
from aiohttp import abc
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

HIGH_WATER = 1 << 16  # buffered body bytes above which the upstream socket stops being read
MAX_IDLE_PER_ORIGIN = 64  # kept-alive connections kept per scheme, host and port
KEEPALIVE_SECONDS = 60.0  # an idle connection older than this is not reused (nginx's default)
MAX_EXCHANGES = 256  # requests under way to all upstreams at once (aiohttp's client had as many)

ConnectFailureKind = Literal["dns", "refused", "timeout"]


class UpstreamError(Exception):
    """Something went wrong talking to the upstream."""


class ConnectFailed(UpstreamError):
    def __init__(self, kind: ConnectFailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class BadResponse(UpstreamError):
    """The response head does not parse (nginx's ``invalid_header``)."""


class ResponseTimeout(UpstreamError, TimeoutError):
    """No bytes from the upstream for the read timeout."""


class ConnectionBroken(UpstreamError, ConnectionError):
    """The upstream closed or reset the connection before the response ended."""


@dataclass(frozen=True)
class Timeouts:
    connect: float  # seconds to establish the connection
    read: float  # seconds between two reads of the response


class Body:
    """A response body as it arrives: the reads the proxy makes (``readany``, ``read``,
    ``read_nowait``) and the ones the connection feeds it."""

    __slots__ = ("_chunks", "_size", "_eof", "_error", "_waiter", "_connection")

    def __init__(self, connection: _Connection) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._connection = connection

    # --- fed by the connection ---

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._size += len(data)
            if self._size > HIGH_WATER:
                self._connection.pause_reading()
            self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def set_exception(self, error: BaseException) -> None:
        """End every read with ``error`` (also what a watcher uses to stop a waiting read)."""
        if self._error is None and not self.at_eof():
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- read by the proxy ---

    @property
    def ended(self) -> bool:
        """Whether all of the body has arrived (its connection is then free for another)."""
        return self._eof

    def at_eof(self) -> bool:
        return self._eof and not self._chunks

    def ready(self) -> bool:
        """Whether ``readany`` would answer without waiting."""
        return bool(self._chunks) or self._eof or self._error is not None

    def read_nowait(self) -> bytes:
        """What is buffered, at once (``b""`` when nothing is)."""
        if not self._chunks:
            return b""
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if not self._eof:  # (once it has all arrived, its connection may carry another body)
            self._connection.resume_reading()
        return data

    async def readany(self) -> bytes:
        """The next bytes, ``b""`` at the end of the body."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return b""
            await self._wait()
        return self.read_nowait()

    async def read(self, limit: int = -1) -> bytes:
        """The whole body, or its first ``limit`` bytes and at least as many as are buffered."""
        parts = bytearray()
        while limit < 0 or len(parts) < limit:
            data = await self.readany()
            if not data:
                break
            parts += data
        return bytes(parts)

    async def _wait(self) -> None:
        self._waiter = waiter = self._connection.loop.create_future()
        self._connection.watch(waiter)
        try:
            await waiter
        finally:
            self._waiter = None


class Response:
    """A response whose head has arrived; the body is read from ``content``."""

    __slots__ = ("status", "headers", "content", "_connection")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], content: Body,
                 connection: _Connection) -> None:  # fmt: skip
        self.status = status
        self.headers = headers
        self.content = content
        self._connection = connection

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    async def read(self) -> bytes:
        return await self.content.read()

    def release(self) -> None:
        """Done with the response: a connection still carrying its body is closed (one whose
        body has all arrived is back in the pool already)."""
        self._connection.done_with(self)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()


class _Connection(asyncio.Protocol):
    """One connection to an upstream, carrying one exchange at a time."""

    def __init__(self, pool: Client, origin: tuple[str, str, int]) -> None:
        self.loop = asyncio.get_running_loop()
        self._pool, self._origin = pool, origin
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._body: Body | None = None
        self._raw_headers: list[tuple[str, str]] = []
        self._inflate: zlib._Decompress | None = None
        self._head_only = False
        self._read_timeout = 0.0
        self._watched: asyncio.Future[Any] | None = None  # the wait the read timeout is for
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self.busy = False  # an exchange is under way (its response not yet complete)
        self.kept_at = 0.0  # when it last went back to the pool (the loop's clock)

    # --- the exchange ---

    async def exchange(self, data: bytes, head_only: bool, read_timeout: float) -> Response:
        assert self._transport is not None
        self.busy = True  # on a slot the caller holds, which _end_exchange() frees
        self._head_only, self._read_timeout = head_only, read_timeout
        self._head = head = self.loop.create_future()
        self._transport.write(data)
        self.watch(head)
        try:
            return await head
        except BaseException:  # cancelled, or failed: nobody will read this exchange's answer
            if self._head is head and self.busy:  # (not when it is already another's)
                self.close()
            raise
        finally:
            if self._head is head:  # (a complete response may have freed it for another)
                self._head = None

    def watch(self, waiter: asyncio.Future[Any]) -> None:
        """Fail ``waiter`` should the upstream stay silent for the read timeout.

        One timer per connection, re-armed only when it fires early: a wait costs a clock
        reading, not a timer scheduled and cancelled (once per response, and per chunk of a
        stream)."""
        self._watched = waiter
        self._deadline = self.loop.time() + self._read_timeout
        if self._timer is None or self._deadline < self._timer.when():
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(self._deadline, self._check_silence)

    def _check_silence(self) -> None:
        self._timer = None
        waiter = self._watched
        if waiter is None or waiter.done():
            return
        if self.loop.time() < self._deadline:
            self._arm()
            return
        waiter.set_exception(ResponseTimeout("timed out reading the response"))
        self.close()

    def done_with(self, response: Response) -> None:
        if not response.content.ended:  # still coming: nothing else can use this connection
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def pause_reading(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports have asyncio.Transport's interface without subclassing it)
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # nothing was asked: a server talking out of turn is not reused
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(f"the upstream's response does not parse: {error}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pool.forget(self)
        if not self.busy:
            return
        self._end_exchange()
        body = self._body
        if body is not None and self._until_close():
            self._end_body()  # a body without length or chunks ends with the connection
            return
        detail = f"the upstream closed the connection ({exc or 'no response'})"
        error = ConnectionBroken(detail if body is None else f"{detail} before the body ended")
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        if body is not None:
            body.set_exception(error)

    # --- httptools callbacks ---

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if not self.busy:  # a second response to one request
            self._fail("the upstream sent a response nobody asked for")
            return
        status = self._parser.get_status_code()
        headers = CIMultiDictProxy(CIMultiDict(self._raw_headers))
        self._raw_headers = []
        if status < 200:  # 100 Continue, 103 Early Hints: the real head follows
            return
        coding = headers.get("Content-Encoding", "").strip().lower()
        if coding in ("gzip", "x-gzip", "deflate"):
            # wbits 47: a zlib or gzip header, whichever comes (deflate is zlib-wrapped)
            self._inflate = zlib.decompressobj(47)
        self._body = Body(self)
        self._response = Response(status, headers, self._body, self)
        if self._head is not None and not self._head.done():
            self._head.set_result(self._response)
        if self._head_only:  # a response to HEAD has no body whatever its length says
            self._end_body()
            self.close()

    def on_body(self, data: bytes) -> None:
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error as error:
                self._fail(f"the upstream's compressed body is corrupt: {error}")
                return
        assert self._body is not None
        self._body.feed(data)

    def on_message_complete(self) -> None:
        if self._body is None:  # the end of an informational response
            return
        self._end_body()
        if self._parser.should_keep_alive() and self._transport is not None:
            self.resume_reading()  # a body read late may have paused it; the next may not wait
            self._pool.keep(self)
        else:
            self.close()

    # --- helpers ---

    def _end_body(self) -> None:
        body, inflate = self._body, self._inflate
        assert body is not None
        if inflate is not None:
            body.feed(inflate.flush())
        self._end_exchange()
        self._body, self._inflate = None, None
        body.feed_eof()

    def _end_exchange(self) -> None:
        """The exchange is over, however it ended: its slot is free."""
        if self.busy:
            self.busy = False
            self._pool.slots.release()

    def _until_close(self) -> bool:
        """Whether the current body is delimited by the connection closing."""
        assert self._response is not None  # (there is a body)
        headers = self._response.headers
        return "Content-Length" not in headers and "chunked" not in headers.get(
            "Transfer-Encoding", "").lower()  # fmt: skip

    def _fail(self, detail: str) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_exception(BadResponse(detail))
        elif self._body is not None:
            self._body.set_exception(ConnectionBroken(detail))
        self._end_exchange()
        self.close()


class Client:
    """Pooled connections to every upstream; one per proxy (or per process)."""

    def __init__(self, resolver: abc.AbstractResolver, limit: int = MAX_EXCHANGES) -> None:
        self._resolver = resolver
        # Exchanges under way at once; a request past that waits for one to end, so a flood of
        # clients cannot take the upstream connections past the descriptors set aside for them
        # (serving.connection_cap leaves a third of ``ulimit -n``).
        self.slots = asyncio.BoundedSemaphore(limit)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._open: set[_Connection] = set()

    async def request(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> Response:
        """Send one request; the response once its head is in. ``url``: absolute, with the
        query it is to carry; ``body`` goes out with a Content-Length."""
        origin = (url.scheme, url.raw_host or "", url.port or 0)
        data = _request_bytes(method, url, headers, body)
        head_only = method == "HEAD"
        # Kept alive, the most recently used first. One the upstream closed while it was idle
        # has left the pool already; a failure after sending is never retried here: the
        # upstream may have acted on the request (failover decides, as nginx's rules say).
        await self.slots.acquire()
        try:
            connection = self._kept(origin) or await self._connect(origin, timeouts.connect)
        except BaseException:
            self.slots.release()
            raise
        return await connection.exchange(data, head_only, timeouts.read)

    def _kept(self, origin: tuple[str, str, int]) -> _Connection | None:
        """The most recently used idle connection that has not been idle too long (a
        connection a firewall dropped silently would take a request down with it)."""
        idle = self._idle.get(origin)
        oldest = asyncio.get_running_loop().time() - KEEPALIVE_SECONDS
        while idle:
            connection = idle.pop()
            if connection.kept_at >= oldest:
                return connection
            connection.close()
        return None

    def keep(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection._origin, [])
        if len(idle) < MAX_IDLE_PER_ORIGIN:
            connection.kept_at = connection.loop.time()
            idle.append(connection)
        else:
            connection.close()

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection._origin)
        if idle is not None:
            if connection in idle:
                idle.remove(connection)
            if not idle:  # upstreams named by templates come and go: no empty entries kept
                del self._idle[connection._origin]

    async def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._idle.clear()

    async def _connect(self, origin: tuple[str, str, int], timeout: float) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._addresses(host, port)
                error: OSError | None = None
                for address in addresses:
                    try:
                        _, connection = await loop.create_connection(
                            lambda: _Connection(self, origin), address["host"], address["port"],
                            family=address["family"], ssl=tls,
                            server_hostname=host if tls else None,
                        )  # fmt: skip
                    except OSError as failure:
                        error = failure
                        continue
                    self._open.add(connection)
                    return connection
        except TimeoutError:
            raise ConnectFailed("timeout", f"timed out connecting to {host}:{port}") from None
        raise ConnectFailed("refused", f"cannot connect to {host}:{port}: {error}")

    async def _addresses(self, host: str, port: int) -> list[dict[str, object]]:
        bare = host[1:-1] if host.startswith("[") else host
        try:
            ip = ipaddress.ip_address(bare.split("%")[0])
        except ValueError:
            pass
        else:
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            return [{"host": bare, "port": port, "family": family}]
        try:
            found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        except OSError as error:
            raise ConnectFailed("dns", f"cannot resolve {host}: {error}") from None
        if not found:
            raise ConnectFailed("dns", f"cannot resolve {host}: no address")
        return found

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


def _request_bytes(method: str, url: URL, headers: Mapping[str, str], body: bytes) -> bytes:
    """The request, head and body, as one buffer: one send on the socket."""
    fields = [] if "Host" in headers else [f"Host: {_host_header(url)}\r\n"]  # first, as nginx
    fields += [f"{name}: {value}\r\n" for name, value in headers.items()]
    if "Content-Length" in headers:  # the body's own length, whatever was asked
        fields = [field for field in fields if not field.lower().startswith("content-length:")]
    head = f"{method} {url.raw_path_qs or '/'} HTTP/1.1\r\n{''.join(fields)}"
    # a value with a line break would smuggle a header in
    if head.count("\n") != len(fields) + 1 or head.count("\r") != len(fields) + 1:
        raise ValueError("a header of the upstream request holds a line break")
    head += f"Content-Length: {len(body)}\r\n\r\n"
    # surrogateescape: a client's header bytes that are not UTF-8 go out as they came in
    return head.encode("utf-8", "surrogateescape") + body


def _host_header(url: URL) -> str:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return host if url.is_default_port() else f"{host}:{url.port}"
