"""Requests per second of one mock process, measured from another process.

    .venv/bin/python tools/loadcheck.py [--mock openai] [--requests 20000] [--concurrency 50]

Starts the mock with ``serve_mocks`` in a child process (one event loop: one core), waits for its
URL, then fires small non-streaming ``/v1/chat/completions`` requests (``/api/chat`` with
``stream: false`` for ollama) over ``--concurrency`` keep-alive connections until ``--requests``
have been answered, and prints the rate. Every answer must be a 200, or the run fails.
Use ``--log`` to measure with the one-line-per-request log on (as ``proxyproof mock`` runs).
On a machine with two or more CPUs the server is pinned to CPU 0 and the client to CPU 1, so
the figure is what one core of the mock answers.

On Linux it also prints the server's CPU time per request (user + system, from ``/proc``): the
rate falls whenever other work takes the server's CPU, while the CPU time is the server's own
cost per request, the better figure to compare two versions by (run each a few times).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

_SERVER = """
import sys
from mocks.app import serve_mocks
log = (lambda line: None) if sys.argv[2] == "quiet" else (lambda line: print(line, flush=True))
serve_mocks([sys.argv[1]], port=0, log=log)
"""

_REQUESTS = {
    "ollama": ("/api/chat", {"model": "llama2", "stream": False}),
    "huggingface": ("/v1/chat/completions", {"model": "tgi"}),
}


def _request(mock: str) -> tuple[str, bytes]:
    path, extra = _REQUESTS.get(mock, ("/v1/chat/completions", {"model": "llama2"}))
    body = {"messages": [{"role": "user", "content": "What is 1+1?"}], **extra}
    return path, json.dumps(body).encode()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far; None where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(
    url: str, body: bytes, total: int, concurrency: int, server: int
) -> tuple[float, float | None]:
    """Requests per second, and the server's CPU seconds per request (None if unknown)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    remaining = total
    headers = {"Content-Type": "application/json", "Authorization": "Bearer load"}

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"unexpected status {response.status}")

        for _ in range(concurrency):  # warm the connections up
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
        started, cpu_before = time.perf_counter(), _cpu_seconds(server)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = total / (time.perf_counter() - started)
        cpu_after = _cpu_seconds(server)
        if cpu_before is None or cpu_after is None:
            return rate, None
        return rate, (cpu_after - cpu_before) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mock", default="openai")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--log", action="store_true", help="keep the per-request log line on")
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, args.mock, "log" if args.log else "quiet"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        preexec_fn=(lambda: os.sched_setaffinity(0, {cpus[0]})) if pinned else None,
    )
    if pinned:
        os.sched_setaffinity(0, {cpus[1]})
    try:
        assert server.stdout is not None
        announced = server.stdout.readline().strip()  # "<name>: <url>"
        base = announced.split(": ", 1)[1]
        if args.log:  # drain the log so the server never blocks on a full pipe
            subprocess.Popen(["cat"], stdin=server.stdout, stdout=subprocess.DEVNULL)
        path, body = _request(args.mock)
        rate, cpu = asyncio.run(
            _load(base + path, body, args.requests, args.concurrency, server.pid)
        )
        where = "pinned to one CPU" if pinned else "in one process"
        logging = ", request log on" if args.log else ""
        cost = "" if cpu is None else f", server CPU {cpu * 1e6:.0f} µs/request"
        print(
            f"{args.mock}: {rate:,.0f} requests/s{cost} ({args.requests} non-streaming POST "
            f"{path}, {args.concurrency} connections, server {where}{logging})"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
