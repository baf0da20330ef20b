"""The benchmark's processes: one per server (a mock or a proxy) and one load generator.

Processes are started with ``spawn``: a clean interpreter, never a ``fork`` of a parent that may
run threads (pytest, a ThreadedServer). A server process pins itself, serves its application on
127.0.0.1 with an ephemeral port and sends the URL back over a pipe; SIGTERM stops it cleanly.
Each class is a context manager that stops the process it started, and only that one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from multiprocessing.connection import Connection as Pipe
from multiprocessing.process import BaseProcess
from typing import Any

from . import layout
from .load import REQUEST_TIMEOUT, Run, RunResult, serve_runs

START_TIMEOUT = 30.0  # seconds for a fresh interpreter to import aiohttp and bind
STOP_TIMEOUT = 5.0
_CONTEXT = multiprocessing.get_context("spawn")


def _serve(role: str, name: str, config: dict[str, Any] | None, cpus: tuple[int, ...],
           pipe: Pipe) -> None:
    """A server process: ``role`` "mock" (``name`` is its kind) or "proxy" (``config``)."""
    layout.pin(cpus)
    try:
        from proxyproof.serving import serve_forever

        if role == "mock":
            from mocks.app import make_settings, mock_app

            settings = make_settings()

            def factory() -> Any:
                return mock_app(name, settings)
        else:
            from proxy_impl import proxy_app  # public entry

            def factory() -> Any:
                return proxy_app(config)

        serve_forever([(name, factory, "127.0.0.1", 0)],
                      announce=lambda _name, url: pipe.send(("ok", url)))
    except Exception as problem:  # the parent is waiting for a URL: tell it why there is none
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

    def __init__(self, role: str, name: str, cpus: tuple[int, ...],
                 config: dict[str, Any] | None = None) -> None:
        self.role, self.name = role, name
        self._pipe, child = _CONTEXT.Pipe(duplex=False)
        self._process = _CONTEXT.Process(
            target=_serve, args=(role, name, config, cpus, child), daemon=True,
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
        status, value = self._pipe.recv()
        if status != "ok":
            raise RuntimeError(f"the load generator failed: {value}")
        return value

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):  # already gone: nothing to tell it
                self._pipe.send(None)
            self._process.join(STOP_TIMEOUT)
        _stop(self._process)
        self._pipe.close()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
