"""Serving one set of applications from N worker processes on the same ports (SO_REUSEPORT).

Python serves one core per process, so a server that should use more cores runs more processes.
Each worker binds its own listening socket to the same address with ``SO_REUSEPORT`` and the
kernel spreads new connections over them; nothing is shared between workers but the port.

The parent only supervises. Before any worker starts it takes each address itself (a socket
bound with ``SO_REUSEPORT`` but never listening: it turns ``--port 0`` into a real port and a
busy port into one clear ``ListenError``; a listener that also set ``SO_REUSEPORT`` is caught by
connecting to it). Workers are forked (so factories need not be picklable), serve with
``serving.serve_forever`` and report each URL over a pipe. On SIGTERM or Ctrl-C the parent
passes one SIGTERM to every worker, which drains as a single server does (a second signal ends
the requests in flight); a worker that dies early stops the others. Workers stop too when the
parent is gone. Linux (and other systems with ``fork`` and ``SO_REUSEPORT``) only.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from .serving import (
    DEFAULT_GRACE,
    DEFAULT_LIMITS,
    AppFactory,
    ConnectionLimits,
    ListenError,
    serve_forever,
)

START_TIMEOUT = 30.0  # seconds for every worker to listen
STOP_MARGIN = 10.0  # seconds past the grace before a worker that has not exited is killed
Apps = list[tuple[str, AppFactory, str, int]]


_identity: tuple[int, int] | None = None  # (this worker's number from 1, how many) in a worker


def current() -> tuple[int, int] | None:
    """In a worker process: its number (1 to N) and N, so an application can name itself and
    find its siblings; None outside workers."""
    return _identity


def supported() -> str | None:
    """None where workers can run, else why not (one line)."""
    if not hasattr(socket, "SO_REUSEPORT") or "fork" not in multiprocessing.get_all_start_methods():
        return "more than one worker needs fork and SO_REUSEPORT (Linux)"
    return None


def _hold(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with SO_REUSEPORT; ListenError if the
    address is taken or cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        held = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, OverflowError) as error:
        raise ListenError(host, port, error) from None
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(address)
        bound = held.getsockname()
        _refuse_if_listening(family, bound)
    except (OSError, OverflowError) as error:
        held.close()
        raise ListenError(host, port, error) from None
    return held


def _refuse_if_listening(family: int, bound: tuple) -> None:
    """Another server that set SO_REUSEPORT as well would share the port silently: refuse."""
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
    target = (wildcard.get(bound[0], bound[0]), *bound[1:])
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        if probe.connect_ex(target) == 0:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


def _worker(apps: Apps, pipe: Connection, limits: ConnectionLimits, grace: float,
            parent_gone: int, not_ours: list[int], identity: tuple[int, int]) -> None:
    """A worker: ``parent_gone`` becomes readable when the parent exits; ``not_ours``: the
    parent's descriptors a fork copied (its end of that pipe, its placeholder sockets);
    ``identity``: its number and the number of workers (``current()``)."""
    global _identity
    _identity = identity
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which says stop
    for fd in not_ours:
        os.close(fd)
    try:
        serve_forever(apps, announce=lambda name, url: pipe.send(("ok", name, url)),
                      limits=limits, grace=grace, reuse_port=True,
                      stop_signals=(signal.SIGTERM,), stop_when_readable=parent_gone,
                      say_draining=False)
    except ListenError as error:
        pipe.send(("error", "", str(error)))
        sys.exit(2)


class _Signals:
    """The parent's SIGINT/SIGTERM, counted; each one is passed on as SIGTERM to the workers."""

    def __init__(self, workers: list[BaseProcess]) -> None:
        self.workers, self.count = workers, 0
        self._previous = {sig: signal.signal(sig, self._on_signal)
                          for sig in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, _sig: int, _frame: object) -> None:
        self.count += 1
        self.tell_workers()

    def tell_workers(self) -> None:
        for process in self.workers:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def serve_workers(
    apps: Apps,
    workers: int,
    announce: Callable[[str, str], None] = lambda name, url: print(f"{name}: {url}", flush=True),
    *,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    grace: float = DEFAULT_GRACE,
) -> int:
    """Serve ``(name, factory, host, port)`` apps from ``workers`` processes until SIGTERM or
    Ctrl-C, then drain them all. Returns 0, or 1 when a worker failed. ``announce`` is called
    once per app, when every worker listens. Raises ListenError for an address that cannot be
    had (before any worker starts)."""
    if workers < 1:
        raise ValueError("workers must be 1 or more")
    why_not = supported()
    if why_not:
        raise ValueError(why_not)
    held = []
    try:
        for _name, _factory, host, port in apps:
            held.append(_hold(host, port))
        fixed = [(name, factory, host, sock.getsockname()[1])
                 for (name, factory, host, _), sock in zip(apps, held, strict=True)]
        return _supervise(fixed, workers, announce, limits, grace, held)
    finally:
        for sock in held:
            sock.close()


def _supervise(apps: Apps, count: int, announce: Callable[[str, str], None],
               limits: ConnectionLimits, grace: float, held: list[socket.socket]) -> int:
    context = multiprocessing.get_context("fork")
    parent_gone, parent_alive = os.pipe()  # EOF on parent_gone once the parent's end closes
    not_ours = [parent_alive, *(sock.fileno() for sock in held)]
    pipes: list[Connection] = []
    processes: list[BaseProcess] = []
    for number in range(count):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_worker, name=f"proxyproof-worker-{number + 1}",
                                  args=(apps, send, limits, grace, parent_gone, not_ours,
                                        (number + 1, count)),
                                  daemon=False)
        process.start()
        send.close()
        pipes.append(receive)
        processes.append(process)
    os.close(parent_gone)
    signals = _Signals(processes)
    try:
        failed = _wait_listening(apps, pipes, processes, announce, signals)
        for sock in held:  # the workers hold the ports now
            sock.close()
        return _wait_stopped(processes, signals, grace) or failed
    finally:
        signals.restore()
        os.close(parent_alive)
        for pipe in pipes:
            pipe.close()


def _wait_listening(apps: Apps, pipes: list[Connection], processes: list[BaseProcess],
                    announce: Callable[[str, str], None], signals: _Signals) -> int:
    """Announce each app once every worker listens; on a worker's failure stop them all and
    raise ListenError (or return 1 when a worker died without a word)."""
    urls: dict[str, str] = {}
    waiting = {pipe: len(apps) for pipe in pipes}
    while waiting and not signals.count:
        ready = wait(list(waiting), timeout=START_TIMEOUT)
        if not ready:
            signals.tell_workers()
            print(f"workers did not start within {START_TIMEOUT:g} s", file=sys.stderr)
            return 1
        for pipe in ready:
            try:
                status, name, text = pipe.recv()  # type: ignore[union-attr]
            except EOFError:  # the worker died while starting
                del waiting[pipe]  # type: ignore[arg-type]
                signals.tell_workers()
                return 1
            if status != "ok":
                signals.tell_workers()
                _join(processes, STOP_MARGIN)
                raise _AlreadySaid(text)
            urls[name] = text
            waiting[pipe] -= 1  # type: ignore[index]
            if not waiting[pipe]:  # type: ignore[index]
                del waiting[pipe]  # type: ignore[arg-type]
    for name, _factory, _host, _port in apps:
        if name in urls:
            announce(name, urls[name])
    return 0


class _AlreadySaid(ListenError):
    """A worker's ListenError, whose text is complete already."""

    def __init__(self, text: str) -> None:
        Exception.__init__(self, text)


def _wait_stopped(processes: list[BaseProcess], signals: _Signals, grace: float) -> int:
    """Until the workers exit: all of them once a signal came, or the first that dies (the
    others are then stopped). 1 when a worker exited before being told to or with an error."""
    failed = 0
    while any(p.is_alive() for p in processes):
        told = signals.count
        wait([p.sentinel for p in processes if p.is_alive()], timeout=0.5)
        if not told and not signals.count and any(not p.is_alive() for p in processes):
            dead = next(p for p in processes if not p.is_alive())
            print(f"{dead.name} exited (status {dead.exitcode}): stopping the others",
                  file=sys.stderr, flush=True)
            failed = 1
            signals.count += 1
            signals.tell_workers()
        if signals.count:
            print(f"stopping {len(processes)} workers: no new connections; requests in flight "
                  f"have {grace:g} s to finish (Ctrl-C again to end them now)",
                  file=sys.stderr, flush=True)
            _join(processes, grace + STOP_MARGIN)
    return failed or int(any(p.exitcode not in (0, -signal.SIGTERM) for p in processes))


def _join(processes: list[BaseProcess], timeout: float) -> None:
    """Wait for every worker up to ``timeout`` in all; kill those still running after it."""
    import time

    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
