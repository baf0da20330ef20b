"""The load generator: sends one prepared request again and again and measures the answers.

It runs in a process of its own (``serve_runs``, pinned to its own CPU): the parent sends a
``Run`` over a pipe and gets a ``RunResult`` back. Every run is bounded twice, by a request
count and by a time limit, each request by a timeout, and it stops early after
``MAX_ERRORS`` failures; only 127.0.0.1 is ever contacted (``http1.BenchRequest`` refuses the rest).

Three kinds of run:

- ``throughput``: ``concurrency`` kept-alive connections, each sending as soon as its previous
  answer is in (a closed loop), after a warm-up that is not counted;
- ``latency``: the same on one connection, so that a request never waits behind another:
  under saturation a closed loop's latency is only ``concurrency / throughput`` again;
- ``stream``: one connection; per request the time to the first frame carrying text, the time
  between later frames carrying text, and the time to the end of the stream.

Two drivers: ``python`` (``http1``, in this process) does every kind; ``wrk`` (``wrk.py``, a
child of this process, so on its CPU) does throughput and latency runs at a fraction of the CPU
per request. ``Run.driver`` picks one; ``scenario`` decides.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection as Pipe
from typing import Literal

from . import cputime, layout, stats, wrk
from .frames import FirstTextScanner
from .http1 import BenchRequest, Connection, ProtocolError

REQUEST_TIMEOUT = 10.0  # seconds; a request slower than this counts as an error
MIN_WRK_SECONDS = 1.0  # the shortest counted wrk run
MAX_ERRORS = 50  # a run that fails this often stops: its figures mean nothing anyway
_FAILURES = (OSError, EOFError, asyncio.LimitOverrunError, ProtocolError, TimeoutError)

RunKind = Literal["throughput", "latency", "stream"]
Driver = Literal["python", "wrk"]


@dataclass(frozen=True)
class Run:
    kind: RunKind
    target: BenchRequest
    max_requests: int
    duration: float  # seconds, the time limit of the counted part
    concurrency: int = 1
    warmup: float = 0.0  # seconds of uncounted requests first (connections open, caches warm)
    servers: tuple[int, ...] = ()  # pids of the servers at work, whose CPU time is measured
    driver: Driver = "python"  # wrk: bounded by the time limit only, max_requests unused

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.duration <= 0 or self.concurrency < 1:
            raise ValueError("a run needs max_requests >= 1, duration > 0 and concurrency >= 1")
        if self.kind != "throughput" and self.concurrency != 1:
            raise ValueError(f"a {self.kind} run uses one connection")
        if self.driver == "wrk" and self.kind == "stream":
            raise ValueError("wrk cannot time a stream's frames: stream runs use the python driver")


@dataclass(frozen=True)
class RunResult:
    requests: int  # answered with 200 (and, for a stream, with text in it)
    errors: int
    seconds: float  # the counted part, until the last answer was in
    latency_p50: float | None  # seconds, request sent to response complete
    latency_p99: float | None
    first_text_p50: float | None = None  # seconds, stream runs only
    first_text_p99: float | None = None
    first_error: str = ""
    load_cpu: float = 0.0  # the load generator's CPU time / wall time; near 1 = it was the limit
    server_cpu: float | None = None  # CPU seconds the servers used in the counted part
    chunk_gap_p99: float | None = None  # seconds between two text frames of a stream, p99
    driver: Driver = "python"

    @property
    def per_second(self) -> float:
        return stats.per_second(self.requests, self.seconds)

    @property
    def load_cpu_per_request(self) -> float | None:
        """The load generator's CPU seconds per answered request."""
        return stats.ratio(self.load_cpu * self.seconds, float(self.requests))


@dataclass
class _Counts:
    issued: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)
    first_texts: list[float] = field(default_factory=list)
    chunk_gaps: list[float] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or problem


async def _exchange(
    connection: Connection, request: bytes, counts: _Counts, stream: bool
) -> None:
    started = time.perf_counter()
    scanner: FirstTextScanner | None = None
    first_text: float | None = None
    last_text = 0.0
    gaps: list[float] = []

    def watch(content_type: str, data: bytes) -> None:
        nonlocal scanner, first_text, last_text
        now = time.perf_counter()
        scanner = scanner or FirstTextScanner(content_type)
        frames = scanner.text_frames(data)
        if not frames:
            return
        if first_text is None:
            first_text, frames = now - started, frames - 1
        else:
            gaps.append(now - last_text)
            frames -= 1
        gaps.extend([0.0] * frames)  # frames that came in the same read as the one before
        last_text = now

    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            response = await connection.send(request, watch if stream else None)
    except _FAILURES as problem:
        connection.close()
        counts.fail(f"{type(problem).__name__}: {problem}".rstrip(": "))
        return
    elapsed = time.perf_counter() - started
    if response.status != 200:
        snippet = response.body[:160].decode("utf-8", "replace")
        counts.fail(f"status {response.status}: {snippet}")
    elif stream and first_text is None:
        counts.fail("the stream carried no text")
    else:
        counts.latencies.append(elapsed)
        if first_text is not None:
            counts.first_texts.append(first_text)
            counts.chunk_gaps.extend(gaps)


@dataclass(frozen=True)
class _Span:
    seconds: float  # wall time
    load_cpu: float  # CPU seconds of this process
    server_cpu: float | None  # CPU seconds of the watched servers


async def _drive(
    connections: list[Connection], request: bytes, limit: int, seconds: float, stream: bool,
    servers: tuple[int, ...] = (),
) -> tuple[_Counts, _Span]:
    """Run the connections' loops: what they got, and the time and CPU time that took."""
    counts = _Counts()
    server_cpu = cputime.cpu_seconds(servers)
    load_cpu = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds

    async def loop(connection: Connection) -> None:
        while counts.issued < limit and counts.errors < MAX_ERRORS:
            if time.perf_counter() >= deadline:
                return
            counts.issued += 1
            await _exchange(connection, request, counts, stream)

    await asyncio.gather(*(loop(connection) for connection in connections))
    span = _Span(time.perf_counter() - started, time.process_time() - load_cpu, None)
    server_cpu_after = cputime.cpu_seconds(servers)
    if servers and server_cpu is not None and server_cpu_after is not None:
        span = _Span(span.seconds, span.load_cpu, server_cpu_after - server_cpu)
    return counts, span


async def measure(run: Run) -> RunResult:
    request = run.target.request_bytes()
    connections = [Connection(run.target.port) for _ in range(run.concurrency)]
    stream = run.kind == "stream"
    try:
        if run.warmup > 0:
            await _drive(connections, request, run.max_requests, run.warmup, stream)
        counts, span = await _drive(connections, request, run.max_requests, run.duration, stream,
                                   run.servers)
    finally:
        for connection in connections:
            connection.close()
    return RunResult(
        requests=len(counts.latencies),
        errors=counts.errors,
        seconds=span.seconds,
        latency_p50=stats.percentile(counts.latencies, 0.50),
        latency_p99=stats.percentile(counts.latencies, 0.99),
        first_text_p50=stats.percentile(counts.first_texts, 0.50),
        first_text_p99=stats.percentile(counts.first_texts, 0.99),
        first_error=counts.first_error,
        load_cpu=span.load_cpu / span.seconds if span.seconds > 0 else 0.0,
        server_cpu=span.server_cpu,
        chunk_gap_p99=stats.percentile(counts.chunk_gaps, 0.99),
    )


def measure_with_wrk(run: Run) -> RunResult:
    """A throughput or latency run by wrk, in this process's CPU set. The warm-up is the Python
    client's (wrk would spend its start-up in it); the counted run lasts ``MIN_WRK_SECONDS`` at
    least, since wrk's own start-up eats into the time limit."""
    program = wrk.executable()
    if program is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk), or use the python driver")
    if run.warmup > 0:
        asyncio.run(measure(replace(run, duration=run.warmup, warmup=0.0, servers=(),
                                    driver="python")))
    found = wrk.run(run.target, run.concurrency, max(run.duration, MIN_WRK_SECONDS), run.servers,
                    wrk=program)
    return RunResult(
        requests=found.requests, errors=found.errors, seconds=found.seconds,
        latency_p50=found.latency_p50, latency_p99=found.latency_p99,
        first_error=found.first_error,
        load_cpu=found.cpu_seconds / found.seconds if found.seconds > 0 else 0.0,
        server_cpu=found.server_cpu, driver="wrk",
    )


def measure_run(run: Run) -> RunResult:
    return measure_with_wrk(run) if run.driver == "wrk" else asyncio.run(measure(run))


def serve_runs(pipe: Pipe, cpus: tuple[int, ...]) -> None:
    """The load generator process: answer each ``Run`` from ``pipe`` until it sends None or is
    gone. Ctrl-C is the parent's to handle (it stops this process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    layout.pin(cpus)
    while True:
        try:
            run = pipe.recv()
        except EOFError:  # the parent has exited
            return
        if run is None:
            return
        try:
            answer: tuple[str, object] = ("ok", measure_run(run))
        except Exception as problem:  # reported to the parent, which decides
            answer = ("error", f"{type(problem).__name__}: {problem}")
        try:
            pipe.send(answer)
        except OSError:  # the parent has exited
            return
