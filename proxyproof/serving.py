"""Run aiohttp applications on 127.0.0.1: in the current loop, in a background thread, or in the
foreground until Ctrl-C.

Shared by the mocks and the reference proxy. It knows nothing about either: it takes a factory
that builds a ``web.Application`` and hands back the URL it listens on.

Every server it starts holds hostile clients at the connection level (``ConnectionLimits``):
headers and bodies must arrive in time, idle keep-alive connections are closed, and connections
beyond a cap get a 503 instead of exhausting the process's file descriptors. The foreground
runner drains on SIGTERM or Ctrl-C: no new connections, requests in flight get a grace period.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import HttpVersion11, http_exceptions, web, web_protocol

AppFactory = Callable[[], web.Application | Awaitable[web.Application]]
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# An application whose every request goes to one handler (the proxy's) names it here, and its
# servers call it straight, past aiohttp's router and response signals: about 20 µs of the
# proxy's CPU per request under load. Such a handler answers ``Expect`` itself
# (``expect_continue``), as aiohttp's router would have. An application with middlewares keeps
# aiohttp's dispatch, which runs them.
ONLY_HANDLER = web.AppKey("proxyproof_only_handler", Handler)


class _NoRequestEcho(logging.Filter):
    """aiohttp logs a malformed request with the offending header line quoted word for word,
    credentials included; keep the record but drop the quote."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, http_exceptions.HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(error).__name__} (request not logged)"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


server_log = logging.getLogger("proxyproof.http")
server_log.addFilter(_NoRequestEcho())


async def expect_continue(request: web.BaseRequest) -> None:
    """What aiohttp's router does for a request with ``Expect`` before its handler runs: "100
    Continue" for ``100-continue`` on HTTP/1.1, a 417 for any other expectation."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11:
        if expect.lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the answer's own body has not started
        else:
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")


# --- connection limits ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may take of a server. All times are in seconds.

    ``header_timeout``: from the connection's opening, or from the first byte of a later request
    on a kept-alive connection, to the end of the request's headers. ``body_timeout``: from the
    end of the headers to the last byte of the body, in total (a trickle does not reset it).
    ``keepalive_timeout``: how long an idle connection is kept between requests (aiohttp's own
    timer). ``max_connections``: connections open at once, lowered to fit the open-file limit
    (``connection_cap``); beyond it a client gets a 503 and is closed.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    # Longer than clients keep idle connections (aiohttp 15 s, httpx 5 s), so a client does not
    # reuse one the server is closing; under nginx's 75 s.
    keepalive_timeout: float = 60.0
    max_connections: int = 1024

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            if not 0 < getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be more than 0 seconds")
        if self.max_connections < 1:
            raise ValueError("max_connections must be 1 or more")


DEFAULT_LIMITS = ConnectionLimits()
DEFAULT_GRACE = 10.0  # seconds the foreground runner lets requests in flight finish on SIGTERM


def connection_cap(requested: int) -> int:
    """``requested``, lowered so client connections leave a third of the open-file limit
    (``ulimit -n``, at least 64 descriptors) to upstream connections, files and refusals."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft - max(64, soft // 3)))


def _answer(status: int, reason: str, message: str) -> bytes:
    """A complete response written straight to the socket, for when no handler can answer."""
    body = json.dumps({"message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


_TOO_MANY = _answer(503, "Service Unavailable", "too many connections")
_REFUSAL_LINGER = 1.0  # seconds a refused connection may take to read its 503 and hang up
_MAX_LINGERING = 64  # refusals lingering at once; past that they are closed at once


class _Gate:
    """The protocol factory given to ``loop.create_server`` (instead of aiohttp's ``Server``):
    it counts live connections and refuses those beyond the cap, so the process never accepts
    until ``accept()`` fails with EMFILE."""

    def __init__(self, server: web.Server, limits: ConnectionLimits) -> None:
        self.server, self.limits = server, limits
        # what aiohttp's Server would build its handlers with: the runner's arguments merged
        # with the application's handler_args (e.g. auto_decompress=False)
        self.handler_args: dict[str, Any] = dict(server._kwargs)
        self.cap = connection_cap(limits.max_connections)
        self.live = 0  # counted when the protocol is made: accept() makes many before any runs
        self.lingering = 0
        self.draining = False
        self.closed = asyncio.Event()  # set while no connection is open
        self.closed.set()

    def __call__(self) -> asyncio.Protocol:
        if self.live >= self.cap:
            return _Refusal(self)
        return _GuardedHandler(self)

    def _handlers(self) -> list[_GuardedHandler]:
        # aiohttp's list holds a connection until its handler is done, even once the client left
        return [h for h in self.server.connections if isinstance(h, _GuardedHandler)]

    def drain(self) -> None:
        """Close idle connections now and busy ones once they have answered what they got."""
        self.draining = True
        for handler in self._handlers():
            handler.drain()

    def abandon(self) -> None:
        """Past the grace period: end every handler still running."""
        for handler in self._handlers():
            handler.abandon()


class _Slot:
    """One counted connection, given back exactly once."""

    def __init__(self, gate: _Gate) -> None:
        self._gate: _Gate | None = gate
        gate.live += 1
        gate.closed.clear()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.live -= 1
            if not self._gate.live:
                self._gate.closed.set()
            self._gate = None


class _Refusal(asyncio.Protocol):
    """A connection beyond the cap: a 503, then close. It half-closes and drops what the client
    sends for a moment, since closing a socket with unread data sends a reset that can destroy
    the 503 before the client reads it."""

    def __init__(self, gate: _Gate) -> None:
        self._gate = gate
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the interface without subclassing asyncio.Transport
        transport = cast(asyncio.Transport, transport)
        transport.write(_TOO_MANY)
        if self._gate.lingering >= _MAX_LINGERING:  # a flood: do not hold descriptors for it
            transport.close()
            return
        self._gate.lingering += 1
        transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(_REFUSAL_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client hung up: close

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._gate.lingering -= 1


class _GuardedHandler(web_protocol.RequestHandler):
    """aiohttp's HTTP/1.1 protocol with what aiohttp lacks: a deadline for the headers, one for
    the body, and a counted slot. It reads a few of its parent's attributes (``_request_count``,
    ``_messages``, ``_current_request``)."""

    def __init__(self, gate: _Gate) -> None:
        super().__init__(gate.server, loop=asyncio.get_running_loop(), **gate.handler_args)
        self._gate, self._limits = gate, gate.limits
        self._slot = _Slot(gate)
        weakref.finalize(self, self._slot.release)  # should the connection never be made
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._header_bytes = False  # part of a request has arrived
        self._start_task: asyncio.Task[None] | None = None
        self._answered = 0  # responses finished, against the parent's _request_count parsed
        self._draining = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_task = self._task_handler
        self._header_timer = self._loop.call_later(self._limits.header_timeout, self._headers_late)
        if self._gate.draining:  # accepted just before the listener closed
            self.drain()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._body_timer is None and data:
            # no request is under way on the wire (its handler may still run), so these bytes
            # start the next request's headers
            self._header_timer = self._loop.call_later(
                self._limits.header_timeout, self._headers_late)
        if self._header_timer is not None and data:
            self._header_bytes = True
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # headers complete (or refused with a 400)
            self._cancel_header_timer()
            self._header_bytes = False
            _message, payload = self._messages[-1]  # earlier ones' bodies are complete
            if not payload.is_eof():
                self._body_timer = self._loop.call_later(
                    self._limits.body_timeout, self._body_late, payload)
                payload.on_eof(self._cancel_body_timer)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._header_bytes and self.transport is not None:
            self.transport.write(_answer(408, "Request Timeout", "request headers timed out"))
        self.force_close()

    def _body_late(self, payload: Any) -> None:
        self._body_timer = None
        request = self._current_request
        if (self.transport is not None and request is not None and request.content is payload
                and request.writer.output_size == 0):
            self.transport.write(_answer(408, "Request Timeout", "request body timed out"))
        # Whatever waits for this body (a handler, or aiohttp discarding it) stops as if
        # cancelled: the way aiohttp itself ends a handler, with nothing logged.
        payload.set_exception(asyncio.CancelledError())
        self.force_close()

    def drain(self) -> None:
        # Not aiohttp's close() nor shutdown(): both stop reading at once, so a request whose
        # body is still arriving could never finish.
        self._draining = True
        if self._answered == self._request_count:  # nothing in flight
            self.force_close()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        finished = await super().finish_response(request, resp, start_time)
        self._answered += 1
        if self._draining and self._answered == self._request_count:
            # the last answer is out: close rather than wait for another request (and with a
            # body left unread, at once rather than read it for aiohttp's lingering time)
            self.close() if request.content.is_eof() else self.force_close()
        return finished

    def abandon(self) -> None:
        if self._start_task is not None:
            self._start_task.cancel()  # and with it the request handler it awaits
        self.force_close()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        self._slot.release()
        super().connection_lost(exc)


class _GatedSite(web.BaseSite):
    """A TCP site whose connections go through a ``_Gate``."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, gate: _Gate,
                 reuse_port: bool = False) -> None:
        super().__init__(runner)
        self._host, self._port, self._gate, self._reuse_port = host, port, gate, reuse_port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._gate, self._host, self._port, backlog=self._backlog, reuse_address=True,
            reuse_port=self._reuse_port or None)


class _AcceptErrors:
    """Loop exception handler: asyncio reports each failed ``accept()`` (out of descriptors
    or memory) with a traceback and retries a second later, so a flood would fill stderr. Say
    it in one line at most every ``interval`` seconds; pass anything else on."""

    MESSAGE = "socket.accept() out of system resource"

    def __init__(self, previous: Callable[..., object] | None, interval: float = 10.0) -> None:
        self.previous, self.interval = previous, interval
        self.last = -float("inf")
        self.missed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != self.MESSAGE:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self.last < self.interval:
            self.missed += 1
            return
        error = context.get("exception")
        code = getattr(error, "errno", None)
        reason = f"{errno.errorcode.get(code, code)} {os.strerror(code)}" if code else str(error)
        more = f"; {self.missed} more since the last report" if self.missed else ""
        server_log.error("cannot accept a connection: %s (retrying every second%s)", reason, more)
        self.last, self.missed = now, 0


def _quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    handler = loop.get_exception_handler()
    if not isinstance(handler, _AcceptErrors):
        loop.set_exception_handler(_AcceptErrors(handler))


# --- running ----------------------------------------------------------------------------------


async def _build(factory: AppFactory) -> web.Application:
    app = factory()
    if isinstance(app, Awaitable):
        app = await app
    return app


@dataclass
class RunningApp:
    """An application listening on a socket, in the loop that started it."""

    runner: web.AppRunner
    url: str
    app: web.Application
    gate: _Gate | None = field(default=None, repr=False)

    async def stop_listening(self) -> None:
        """Refuse new connections; those open go on."""
        for site in list(self.runner.sites):
            await site.stop()

    async def drain(self) -> None:
        """Stop listening, close idle connections, and return once those busy have answered
        what they received and closed."""
        await self.stop_listening()
        if self.gate is not None:
            self.gate.drain()
            await self.gate.closed.wait()

    def abandon_requests(self) -> None:
        """End the requests still in flight now, whatever they are doing."""
        if self.gate is not None:
            self.gate.abandon()

    async def stop(self) -> None:
        """Stop listening, close idle connections, give requests in flight the runner's
        shutdown timeout to finish, then close the rest and clean the application up."""
        await self.runner.cleanup()


class ListenError(Exception):
    """The address cannot be listened on, said in one line a user can act on."""

    def __init__(self, host: str, port: int, error: BaseException) -> None:
        reasons = {
            errno.EADDRINUSE: "the port is already in use (pick another with --port, or --port 0 "
            "for any free port)",
            errno.EADDRNOTAVAIL: "this machine has no such address",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
        }
        if isinstance(error, socket.gaierror):
            reason = "unknown host name"
        elif isinstance(error, OverflowError):
            reason = "the port must be 0 to 65535"
        else:
            reason = reasons.get(getattr(error, "errno", None) or 0) or str(error)
        super().__init__(f"cannot listen on {host}:{port}: {reason}")


async def start_app(
    factory: AppFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    grace: float = 1.0,
    reuse_port: bool = False,
) -> RunningApp:
    """Start ``factory()``'s application in the running loop; ``port=0`` picks a free port.
    ``grace``: how long ``stop()`` lets requests in flight finish. ``reuse_port``: share the
    port with other processes' sockets that set it too (``workers``: the kernel spreads the
    connections)."""
    app = await _build(factory)
    handler_args = {"access_log": None, "logger": server_log,
                    "keepalive_timeout": limits.keepalive_timeout}
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=grace, **handler_args)
    await runner.setup()
    assert runner.server is not None
    only = app.get(ONLY_HANDLER)
    if only is not None and not app.middlewares:
        runner.server.request_handler = only
    gate = _Gate(runner.server, limits)
    site = _GatedSite(runner, host, port, gate, reuse_port)
    try:
        await site.start()
    except (OSError, OverflowError) as error:
        await runner.cleanup()  # the app may hold resources already (a client session)
        raise ListenError(host, port, error) from None
    _quiet_accept_errors(asyncio.get_running_loop())
    bound = site._server.sockets[0].getsockname()  # the real port when port=0
    shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return RunningApp(runner, f"http://{shown_host}:{bound[1]}", app, gate)


class AsyncServer:
    """``async with AsyncServer(factory) as server: server.url`` — an app in the caller's loop."""

    def __init__(self, factory: AppFactory, host: str = "127.0.0.1", port: int = 0, *,
                 limits: ConnectionLimits = DEFAULT_LIMITS) -> None:
        self._factory, self._host, self._port, self._limits = factory, host, port, limits
        self._running: RunningApp | None = None

    @property
    def url(self) -> str:
        assert self._running, "server is not running"
        return self._running.url

    @property
    def app(self) -> web.Application:
        assert self._running, "server is not running"
        return self._running.app

    async def __aenter__(self) -> AsyncServer:
        self._running = await start_app(self._factory, self._host, self._port,
                                        limits=self._limits)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._running:
            await self._running.stop()
            self._running = None


@dataclass
class ThreadedServer:
    """An app served from its own event loop in a daemon thread, for synchronous callers.

    ``with ThreadedServer(factory) as server: server.url``.
    """

    factory: AppFactory
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""
    limits: ConnectionLimits = DEFAULT_LIMITS
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _running: RunningApp | None = field(default=None, repr=False)

    @property
    def app(self) -> web.Application:
        assert self._running, "server is not running"
        return self._running.app

    def start(self) -> ThreadedServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = new_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                starting = start_app(self.factory, self.host, self.port, limits=self.limits)
                self._running = loop.run_until_complete(starting)
                self.url = self._running.url
            except BaseException as error:  # reported to the starting thread
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._running.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="proxyproof-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def task_count(self) -> int | None:
        """How many tasks the server's loop holds (handlers, streams), or None when stopped."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return None

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1  # not this one

        return asyncio.run_coroutine_threadsafe(count(), loop).result(timeout=5)

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._thread = self._running = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    apps: list[tuple[str, AppFactory, str, int]],
    announce: Callable[[str, str], None] = lambda name, url: print(f"{name}: {url}", flush=True),
    *,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    grace: float = DEFAULT_GRACE,
    reuse_port: bool = False,
    stop_signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
    stop_when_readable: int | None = None,
    say_draining: bool = True,
) -> None:
    """Serve ``(name, factory, host, port)`` apps in the foreground until Ctrl-C or SIGTERM.

    Then drain: stop listening, close idle connections, give requests in flight (streams
    included) ``grace`` seconds to finish, end what remains and return. A second signal ends
    them at once. For a worker process (``workers``): ``reuse_port``, only ``stop_signals``,
    also stop when the descriptor ``stop_when_readable`` is (its parent's end), and leave the
    drain's message to the parent (``say_draining``).
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in stop_signals:
            loop.add_signal_handler(sig, stop.set)
        if stop_when_readable is not None:
            loop.add_reader(stop_when_readable, stop.set)
        running: list[RunningApp] = []
        try:
            for name, factory, host, port in apps:
                started = await start_app(factory, host, port, limits=limits, grace=grace,
                                          reuse_port=reuse_port)
                running.append(started)
                announce(name, started.url)
        except BaseException:  # one could not start: stop the others, nothing is in flight
            for started in reversed(running):
                await started.stop()
            raise
        await stop.wait()
        if stop_when_readable is not None:
            loop.remove_reader(stop_when_readable)
        await _drain(running, grace, stop_signals, say_draining)

    run_loop(main())


def event_loop_name() -> str:
    """The event loop servers run on, as ``PROXYPROOF_LOOP`` says: ``uvloop`` (the default where
    it is installed: a dependency on Linux and macOS) or ``asyncio`` (asyncio's own, the default
    elsewhere). uvloop saves the proxy about a tenth of its CPU per request and 0.05 ms per
    request one at a time (docs/performance.md). ``ValueError`` for any other value, or for
    ``uvloop`` where it is not installed."""
    chosen = os.environ.get("PROXYPROOF_LOOP", "").strip().lower()
    if chosen not in ("", "uvloop", "asyncio"):
        raise ValueError(f"PROXYPROOF_LOOP must be uvloop or asyncio, not {chosen!r}")
    if chosen == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if chosen:
            raise ValueError("PROXYPROOF_LOOP=uvloop, but uvloop is not installed "
                             "(pip install uvloop)") from None
        return "asyncio"
    return "uvloop"


def new_loop() -> asyncio.AbstractEventLoop:
    """A new loop of ``event_loop_name()``'s kind."""
    if event_loop_name() == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_loop(main: Awaitable[Any]) -> Any:
    """``asyncio.run(main)`` on ``event_loop_name()``'s loop."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


async def _drain(running: list[RunningApp], grace: float, signals: tuple[int, ...],
                 say: bool = True) -> None:
    loop = asyncio.get_running_loop()

    def abandon() -> None:
        for started in running:
            started.abandon_requests()

    for sig in signals:
        loop.add_signal_handler(sig, abandon)
    for started in running:
        await started.stop_listening()
    if say:
        print(f"stopping: no new connections; requests in flight have {grace:g} s to finish "
              "(Ctrl-C again to end them now)", file=sys.stderr, flush=True)
    deadline = loop.time() + grace
    draining = [asyncio.ensure_future(started.drain()) for started in running]
    _, pending = await asyncio.wait(draining, timeout=grace)
    if pending:
        abandon()
    for task in pending:
        task.cancel()
    # aiohttp's cleanup then finds only handlers whose client left (waiting for them up to
    # its timeout) and closes the applications (their client sessions).
    stopping = [asyncio.ensure_future(started.stop()) for started in running]
    _, pending = await asyncio.wait(stopping, timeout=max(0.0, deadline - loop.time()))
    if pending:
        abandon()
        await asyncio.wait(pending, timeout=5)
