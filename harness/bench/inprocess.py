"""``proxyproof bench --in-process``: what one proxied request costs, free of other processes.

The gateway, an upstream and the client share one event loop in this process, pinned to one
CPU, and requests go one at a time over loopback: every microsecond of a round trip is CPU work
of one of them (or the kernel's, for them), none is a wait for another process to be scheduled.
The upstream is a canned one: it answers every request with the reply the hosting's mock gave to
the request the gateway sent it (learnt once, through the gateway and the real mock), so it
costs the same few microseconds every time and the mock's own work, which varies with the text
it generates, is out of the figure. The request the gateway sends, sent straight to that
upstream, is the direct round trip; the difference is what the gateway costs per request: its
own work and one more loopback hop; the ratio of the two cancels the machine's own changes of
speed. The floor (``floor.py``), sending the same upstream request, is timed beside it: the
least a proxy in Python adds. Each side is timed in batches, in turn, the garbage collector held
during a batch, and the fastest batch of each is kept.

It does not replace the cross-process figures (throughput, latency, streams): it is the one to
compare two versions of a gateway by, on a machine too noisy for the others.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httptools

from proxyproof.serving import run_loop, start_app

from .. import kong_config
from ..catalogue.loader import SEED
from ..gateway import GatewayApp
from ..hostings import Hosting
from . import machine, stats
from .floor import Floor, start_floor
from .http1 import LOOPBACK, BenchRequest, Connection, RawReply
from .layout import current_layout
from .scenario import CHAT_ROUTE, Unavailable, capture_direct_call
from .servers import mock_factory

WARMUP = 200  # requests on each side before timing: imports, caches, the connection pools


@dataclass(frozen=True)
class InProcessSettings:
    requests: int = 2000  # per batch
    batches: int = 5

    def __post_init__(self) -> None:
        if self.requests < 1 or self.batches < 1:
            raise ValueError("--samples must be 1 or more")


QUICK = InProcessSettings(requests=200, batches=3)  # a smoke run: the figures are rough


@dataclass(frozen=True)
class InProcessRow:
    hosting: str
    direct_us: float | None = None  # the fastest batch's time per round trip
    proxied_us: float | None = None  # through the bundled proxy
    floor_us: float | None = None  # through the floor (the least a proxy in Python costs)
    error: str = ""

    def added_us(self, through: float | None) -> float | None:
        return None if through is None or self.direct_us is None else through - self.direct_us

    def ratio(self, through: float | None) -> float | None:
        """through / direct: a cost in bare round trips, which a change of the machine's own
        speed between runs moves far less than the microseconds."""
        return stats.ratio(through, self.direct_us)


@dataclass
class InProcessReport:
    machine: dict[str, Any]
    settings: dict[str, Any]
    rows: list[InProcessRow] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for row in self.rows if row.error)

    def to_json(self) -> dict[str, Any]:
        def figures(row: InProcessRow) -> dict[str, Any]:
            return asdict(row) | {
                "added_us": _round(row.added_us(row.proxied_us)),
                "ratio": _round(row.ratio(row.proxied_us)),
                "floor_added_us": _round(row.added_us(row.floor_us)),
                "floor_ratio": _round(row.ratio(row.floor_us)),
            }

        return {"machine": self.machine, "settings": self.settings,
                "rows": [figures(row) for row in self.rows]}


def run(proxy: GatewayApp, hostings: Sequence[Hosting],
        settings: InProcessSettings = InProcessSettings(),
        progress: Callable[[str], None] = lambda line: None) -> InProcessReport:
    report = InProcessReport(machine.describe(), asdict(settings))
    with _pinned(current_layout().proxies[:1]):
        for hosting in hostings:
            progress(f"in process: {hosting.name}")
            report.rows.append(run_loop(_hosting(proxy, hosting, settings)))
    return report


async def _hosting(proxy: GatewayApp, hosting: Hosting, settings: InProcessSettings
                   ) -> InProcessRow:
    async with AsyncExitStack() as stack:  # stops the servers, closes the connections

        async def started(starting: Awaitable[Any]) -> Any:
            running = await starting
            stack.push_async_callback(running.stop)
            return running

        def connected(url: str) -> Connection:
            connection = Connection(urlsplit(url).port or 80)
            stack.callback(connection.close)  # (before its server stops: Python 3.12+ waits)
            return connection

        try:
            mock = await started(start_app(mock_factory(hosting.mock)))
            config = kong_config.load(hosting.example)
            gateway = await started(start_app(functools.partial(
                proxy, kong_config.point_at(config, mock.url))))
            proxied = BenchRequest(gateway.url + CHAT_ROUTE, json.dumps(SEED["chat"]).encode())
            # the capture is a blocking client: in a thread, while this loop serves it
            direct = await asyncio.to_thread(capture_direct_call, proxied, mock.url)
            reply = await connected(direct.url).send(direct.request_bytes())
            if reply.status != 200:
                raise _Failed(f"the mock answered {reply.status}")
            canned = await started(_CannedServer.start(reply))
            gateway = await started(start_app(functools.partial(
                proxy, kong_config.point_at(config, canned.url))))
            upstream = canned.url + urlsplit(direct.url).path
            floor = await started(start_floor(Floor(upstream, direct.body, direct.body,
                                                    direct.headers)))
            sides = [_Side(connected(target.url), target) for target in (
                replace(direct, url=upstream), replace(proxied, url=gateway.url + CHAT_ROUTE),
                replace(proxied, url=floor.url + CHAT_ROUTE))]
            for side in sides:
                await side.send(WARMUP)
            for _ in range(settings.batches):
                for side in sides:
                    await side.batch(settings.requests)
        except (Unavailable, _Failed, OSError) as problem:
            return InProcessRow(hosting.name, error=str(problem))
        return InProcessRow(hosting.name, *(side.best_us for side in sides))


class _CannedUpstream(asyncio.Protocol):
    """Answers every request on its connection with the same bytes, whatever it asked."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.close()

    def on_message_complete(self) -> None:  # httptools' callback
        assert self._transport is not None
        self._transport.write(self._answer)


class _CannedServer:
    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self.url = f"http://{LOOPBACK}:{server.sockets[0].getsockname()[1]}"

    @classmethod
    async def start(cls, reply: RawReply) -> _CannedServer:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {reply.content_type}\r\n"
                f"Content-Length: {len(reply.body)}\r\n\r\n")
        answer = head.encode("latin-1") + reply.body
        server = await asyncio.get_running_loop().create_server(
            lambda: _CannedUpstream(answer), LOOPBACK, 0)
        return cls(server)

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


class _Failed(Exception):
    pass


class _Side:
    """One request sent again and again on one kept-alive connection, one at a time."""

    def __init__(self, connection: Connection, target: BenchRequest) -> None:
        self._connection = connection
        self._data = target.request_bytes()
        self.best_us = float("inf")

    async def send(self, count: int) -> None:
        for _ in range(count):
            reply = await self._connection.send(self._data)
            if reply.status != 200:
                text = " ".join(reply.body[:200].decode("utf-8", "replace").split())
                raise _Failed(f"answered {reply.status}: {text}")

    async def batch(self, count: int) -> None:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            await self.send(count)
            self.best_us = min(self.best_us, (time.perf_counter() - start) / count * 1e6)
        finally:
            gc.enable()


@contextmanager
def _pinned(cpus: Sequence[int]) -> Iterator[None]:
    """This process on ``cpus`` for the while (where the system lets it pin at all)."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def in_process_table(report: InProcessReport) -> str:
    settings = report.settings
    lines = ["proxyproof bench --in-process: a gateway's cost per request, one request at a time, "
             "with the gateway,",
             "a canned upstream (the mock's reply, replayed) and the client in one process on one "
             "CPU;",
             f"µs per round trip, the fastest of {settings['batches']} batches of "
             f"{settings['requests']:,}; added = through the gateway - straight to the upstream;",
             "ratio = through / straight; floor = the benchmark's bare pass-through proxy, "
             "sending the same upstream request",
             f"machine: {machine.one_line(report.machine)}", "",
             f"  {'':<18}{'':>8}{'proxyproof':>28}{'floor':>28}",
             f"  {'hosting':<18}{'direct':>8}" + f"{'µs':>10}{'added':>10}{'ratio':>8}" * 2]
    for row in report.rows:
        if row.error:
            lines.append(f"  {row.hosting:<18}n/a ({row.error})")
            continue
        line = f"  {row.hosting:<18}{row.direct_us:>8,.1f}"
        for through in (row.proxied_us, row.floor_us):
            line += (f"{through:>10,.1f}{row.added_us(through):>10,.1f}"
                     f"{row.ratio(through):>7.2f}x")
        lines.append(line)
    return "\n".join(lines)


def in_process_json(report: InProcessReport) -> str:
    return json.dumps(report.to_json(), indent=2)
