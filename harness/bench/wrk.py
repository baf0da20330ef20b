"""Non-streaming runs driven by ``wrk`` (a C load generator), when it is installed.

Why: ``wrk`` spends a few microseconds of CPU per request where the project's own Python client
(``http1``) spends tens, so on a machine with few cores it leaves the servers the CPU and never
becomes the limit itself. It cannot see a stream's frames, so stream runs stay with ``http1``.

A run is one ``wrk`` process (one thread, ``concurrency`` kept-alive connections) with a Lua
script generated here: it sets the method, body and headers of the prepared request and, when
wrk is done, prints one line of JSON with the counts and the latency percentiles. wrk takes whole
seconds only, so it is started for longer and stopped by SIGINT (wrk's own "stop and report") at
the run's time limit. The CPU it used comes from ``wait4``'s resource usage.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from . import cputime
from .http1 import BenchRequest

MARKER = "PROXYPROOF-WRK "
REQUEST_TIMEOUT_S = 10  # a request slower than this counts as a timeout error

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('%s{"requests":%d,"microseconds":%d,"connect":%d,"read":%d,'
    .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n', "MARKER",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""".replace('"MARKER"', '"' + MARKER + '"')


def executable() -> str | None:
    """The path of ``wrk``, or None where it is not installed."""
    return shutil.which("wrk")


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal: printable ASCII as is, every other byte as ``\\ddd``."""
    out = []
    for byte in data:
        if 0x20 <= byte < 0x7F and byte not in (0x22, 0x5C):
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def script(target: BenchRequest) -> str:
    """The Lua script that makes wrk send ``target`` and report in one JSON line (pure)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(target.body)}"]
    for name, value in target.headers:
        if name.lower() not in ("host", "content-length", "connection", "transfer-encoding"):
            lines.append(f"wrk.headers[{lua_string(name.encode('latin-1'))}] = "
                         f"{lua_string(value.encode('latin-1'))}")
    return "\n".join(lines) + "\n" + _DONE


@dataclass(frozen=True)
class WrkResult:
    requests: int  # answered with a 2xx or 3xx
    errors: int  # non-2xx/3xx answers, failed connects, reads, writes and timeouts
    seconds: float
    latency_p50: float | None  # seconds
    latency_p99: float | None
    first_error: str
    cpu_seconds: float  # wrk's own user + system time
    server_cpu: float | None  # CPU seconds of the watched servers during the run


def parse(stdout: str) -> dict[str, int]:
    """The figures of wrk's report line (pure); ValueError when there is none."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise ValueError("wrk printed no report")


def _describe_errors(figures: dict[str, int]) -> str:
    kinds = [f"{figures[kind]} {label}" for kind, label in (
        ("status", "answers not 2xx/3xx"), ("connect", "failed connects"),
        ("read", "failed reads"), ("write", "failed writes"), ("timeout", "timeouts"))
        if figures.get(kind)]
    return "wrk: " + ", ".join(kinds) if kinds else ""


def run(target: BenchRequest, concurrency: int, seconds: float,
        servers: tuple[int, ...] = (), wrk: str = "wrk") -> WrkResult:
    """One wrk run of ``seconds`` against ``target`` (the calling process's CPU affinity is
    wrk's too); ``servers``: pids whose CPU time is measured over the run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="proxyproof-wrk-",
                                     delete=False) as file:
        file.write(script(target))
    try:
        before, children = cputime.cpu_seconds(servers), _children_cpu()
        process = subprocess.Popen(
            [wrk, "-t1", f"-c{concurrency}", f"-d{math.ceil(seconds) + 2}s",
             f"--timeout={REQUEST_TIMEOUT_S}s", "-s", file.name, target.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True)
        stdout, stderr = _stop_after(process, seconds)
        usage = _children_cpu() - children  # wrk's, reaped by communicate()
        after = cputime.cpu_seconds(servers)
    finally:
        os.unlink(file.name)
    try:
        figures = parse(stdout)
    except ValueError:
        problem = " ".join((stderr or stdout).split())[:200] or f"exit status {process.returncode}"
        return WrkResult(0, 1, seconds, None, None, f"wrk failed: {problem}", usage, None)
    failed = sum(figures[k] for k in ("status", "connect", "read", "write", "timeout"))
    answered = max(0, figures["requests"] - figures["status"])
    spent = None if before is None or after is None or not servers else after - before
    p50, p99 = (figures[k] / 1e6 if answered else None for k in ("p50_us", "p99_us"))
    return WrkResult(answered, failed, figures["microseconds"] / 1e6, p50, p99,
                     _describe_errors(figures), usage, spent)


def _stop_after(process: subprocess.Popen[str], seconds: float) -> tuple[str, str]:
    """wrk's output, once it has run ``seconds``: SIGINT makes it stop, report and call done().
    wrk ignores SIGINT until its threads run, so one that came too early is sent again."""
    try:
        return process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + REQUEST_TIMEOUT_S + 5
    while time.monotonic() < deadline:
        process.send_signal(signal.SIGINT)
        try:
            return process.communicate(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    return process.communicate()


def _children_cpu() -> float:
    """User + system CPU seconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
