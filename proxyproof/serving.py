"""Run aiohttp applications on 127.0.0.1: in the current loop, in a background thread, or in the
foreground until Ctrl-C.

Shared by the mocks and the reference proxy. It knows nothing about either: it takes a factory
that builds a ``web.Application`` and hands back the URL it listens on.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import http_exceptions, web

AppFactory = Callable[[], web.Application | Awaitable[web.Application]]


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

    async def stop(self) -> None:
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


async def start_app(factory: AppFactory, host: str = "127.0.0.1", port: int = 0) -> RunningApp:
    """Start ``factory()``'s application in the running loop; ``port=0`` picks a free port."""
    app = await _build(factory)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=1.0, logger=server_log
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except (OSError, OverflowError) as error:
        await runner.cleanup()  # the app may hold resources already (a client session)
        raise ListenError(host, port, error) from None
    bound = site._server.sockets[0].getsockname()  # the real port when port=0
    shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return RunningApp(runner, f"http://{shown_host}:{bound[1]}", app)


class AsyncServer:
    """``async with AsyncServer(factory) as server: server.url`` — an app in the caller's loop."""

    def __init__(self, factory: AppFactory, host: str = "127.0.0.1", port: int = 0) -> None:
        self._factory, self._host, self._port = factory, host, port
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
        self._running = await start_app(self._factory, self._host, self._port)
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
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                starting = start_app(self.factory, self.host, self.port)
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
) -> None:
    """Serve ``(name, factory, host, port)`` apps in the foreground until Ctrl-C or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = []
        try:
            for name, factory, host, port in apps:
                started = await start_app(factory, host, port)
                running.append(started)
                announce(name, started.url)
            await stop.wait()
        finally:
            for started in reversed(running):
                await started.stop()

    asyncio.run(main())
