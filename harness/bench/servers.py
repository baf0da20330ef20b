"""The benchmark's processes: one per server (a mock or a proxy) and one load generator.

Processes are started with ``spawn``: a clean interpreter, never a ``fork`` of a parent that may
run threads (pytest, a ThreadedServer). Like any ``spawn`` user, a script that calls the
benchmark must do so under ``if __name__ == "__main__":``.

A server process pins itself, serves its application on 127.0.0.1 with an ephemeral port and
sends the URL back over a pipe. It stops on SIGTERM and when its parent is gone (however the
parent died: no orphaned servers); Ctrl-C is for the parent, which stops its children. Each
class is a context manager that stops the process it started, and only that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import signal
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from aiohttp import web

from proxyproof.serving import AppFactory, run_loop, start_app

from . import layout
from .load import REQUEST_TIMEOUT, Run, RunResult, serve_runs

START_TIMEOUT = 30.0  # seconds for a fresh interpreter to import aiohttp and bind
STOP_TIMEOUT = 5.0
_CONTEXT = multiprocessing.get_context("spawn")


def mock_factory(name: str) -> AppFactory:
    """A mock with default settings (picklable: it crosses into the server process)."""
    return functools.partial(_default_mock, name)


def _default_mock(name: str) -> web.Application:
    from proxyproof.mocks.app import make_settings, mock_app

    return mock_app(name, make_settings())


class Running(Protocol):
    url: str

    async def stop(self) -> None: ...


# Starts a server in the running loop: (what to serve, host, port) -> its URL and how to stop it.
# Module-level functions only: it crosses into the server process.
Start = Callable[[Any, str, int], Awaitable[Running]]


async def _serve_until_stopped(factory: Any, pipe: Pipe, port: int, start: Start) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    parent = multiprocessing.parent_process()
    if parent is not None:  # its sentinel becomes readable when the parent exits
        loop.add_reader(parent.sentinel, stop.set)
    running = await start(factory, "127.0.0.1", port)
    pipe.send(("ok", running.url))
    try:
        await stop.wait()
    finally:
        await running.stop()


def _serve(factory: Any, cpus: tuple[int, ...], pipe: Pipe, port: int, start: Start) -> None:
    """A server process: serves ``factory`` (through ``start``) until stopped."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    layout.pin(cpus)
    try:
        run_loop(_serve_until_stopped(factory, pipe, port, start))
    except Exception as problem:  # the parent is waiting for a URL: tell it why there is none
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(problem).__name__}: {problem}"))


def _stop(process: BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(STOP_TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join(STOP_TIMEOUT)


class ServerProcess:
    """``start()`` returns at once (start several side by side); ``wait()``/``url`` wait for the
    server to listen."""

    def __init__(self, role: str, name: str, factory: Any, cpus: tuple[int, ...],
                 port: int = 0, start: Start = start_app) -> None:
        """``factory`` must be picklable (a module-level function or a partial of one);
        ``port`` 0 = any free one. ``start`` serves it: by default an aiohttp application,
        ``factory`` building it; another server takes ``factory`` as its settings."""
        self.role, self.name = role, name
        self._pipe, child = _CONTEXT.Pipe(duplex=False)
        self._process = _CONTEXT.Process(
            target=_serve, args=(factory, cpus, child, port, start), daemon=True,
            name=f"proxyproof-bench-{role}-{name}",
        )
        self._child = child
        self._url = ""

    def start(self) -> ServerProcess:
        self._process.start()
        self._child.close()  # the child holds its own copy; EOF here means it is gone
        return self

    @property
    def url(self) -> str:
        return self.wait()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None, "not started"
        return self._process.pid

    def wait(self) -> str:
        """The server's URL, once it listens (at most ``START_TIMEOUT``)."""
        if not self._url:
            if not self._pipe.poll(START_TIMEOUT):
                raise RuntimeError(f"{self.role} {self.name} did not start in {START_TIMEOUT}s")
            try:
                status, value = self._pipe.recv()
            except EOFError:
                raise RuntimeError(f"{self.role} {self.name} exited while starting") from None
            if status != "ok":
                raise RuntimeError(f"{self.role} {self.name} failed to start: {value}")
            self._url = value
        return self._url

    def stop(self) -> None:
        _stop(self._process)
        self._pipe.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoadGenerator:
    """The load generator process: ``measure(run)`` blocks until the run's result is back."""

    def __init__(self, cpus: tuple[int, ...]) -> None:
        self._pipe, child = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=serve_runs, args=(child, cpus), daemon=True, name="proxyproof-bench-load"
        )
        self._child = child

    def start(self) -> LoadGenerator:
        self._process.start()
        self._child.close()
        return self

    def measure(self, run: Run) -> RunResult:
        self._pipe.send(run)
        # A run ends by its time limit; the margin covers the requests still in flight.
        limit = 2 * (run.warmup + run.duration + REQUEST_TIMEOUT) + START_TIMEOUT
        if not self._pipe.poll(limit):
            raise RuntimeError(f"the load generator gave no result within {limit:.0f}s")
        try:
            status, value = self._pipe.recv()
        except EOFError:
            raise RuntimeError("the load generator exited in the middle of a run") from None
        if status != "ok":
            raise RuntimeError(f"the load generator failed: {value}")
        return value

    def stop(self, graceful: bool = True) -> None:
        """Ask it to finish (``graceful``: after the run in progress), else terminate it."""
        if graceful and self._process.is_alive():
            with contextlib.suppress(OSError):  # already gone: nothing to tell it
                self._pipe.send(None)
            self._process.join(STOP_TIMEOUT)
        _stop(self._process)
        self._pipe.close()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.stop(graceful=exc_type is None)
