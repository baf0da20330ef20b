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
least a proxy in Python adds. The sides are timed in batches, taken in turn request by request
(so that a change of the machine's speed during a batch falls on every side alike), the garbage
collector held during a batch, and the fastest batch of each is kept.

For the hostings that stream in the benchmark, the time to a stream's first token is measured
the same way. In one loop the client could see nothing before the gateway had translated the
whole stream, so the canned upstream sends the stream up to its first text frame and the rest only
once the client has that frame (``_CannedServer`` for a stream).

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
from .frames import FirstTextScanner, first_text_end
from .http1 import LOOPBACK, BenchRequest, Connection, RawReply
from .layout import current_layout
from .scenario import CHAT_ROUTE, STREAMING_MOCKS, Unavailable, capture_direct_call
from .servers import mock_factory

WARMUP = 200  # requests on each side before timing: imports, caches, the connection pools
REPLY = "reply"  # what is timed: the whole round trip of a chat request
FIRST_TOKEN = "first token"  # the time to the first text of a streamed one


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
    measure: str = REPLY
    direct_us: float | None = None  # the fastest batch's time per request, as ``measure`` says
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
            report.rows += run_loop(_hosting(proxy, hosting, settings))
    return report


async def _hosting(proxy: GatewayApp, hosting: Hosting, settings: InProcessSettings
                   ) -> list[InProcessRow]:
    measures = (REPLY, FIRST_TOKEN) if hosting.mock in STREAMING_MOCKS else (REPLY,)
    async with AsyncExitStack() as stack:  # stops the servers, closes the connections
        rig = _Rig(stack, proxy)
        try:
            mock = await rig.started(start_app(mock_factory(hosting.mock)))
            config = kong_config.load(hosting.example)
            learner = await rig.gateway(config, mock.url)
            groups = [await rig.sides(measure, config, learner.url, mock.url)
                      for measure in measures]  # fmt: skip
            sides = [side for group in groups for side in group]
            for side in sides:
                await side.send(WARMUP)
            for _ in range(settings.batches):
                await _batch(sides, settings.requests)
        except (Unavailable, _Failed, OSError) as problem:
            return [InProcessRow(hosting.name, measure, error=str(problem)) for measure in measures]
        return [InProcessRow(hosting.name, measure, *(side.best_us for side in group))
                for measure, group in zip(measures, groups, strict=True)]  # fmt: skip


class _Rig:
    """The servers and connections of one hosting's run, stopped and closed with ``stack``."""

    def __init__(self, stack: AsyncExitStack, proxy: GatewayApp) -> None:
        self._stack, self._proxy = stack, proxy

    async def started(self, starting: Awaitable[Any]) -> Any:
        running = await starting
        self._stack.push_async_callback(running.stop)
        return running

    def connected(self, url: str) -> Connection:
        connection = Connection(urlsplit(url).port or 80)
        self._stack.callback(connection.close)  # (before its server stops: Python 3.12+ waits)
        return connection

    async def gateway(self, config: dict[str, Any], upstream: str) -> Any:
        return await self.started(start_app(functools.partial(
            self._proxy, kong_config.point_at(config, upstream))))  # fmt: skip

    async def sides(self, measure: str, config: dict[str, Any], learner: str, mock: str
                    ) -> list[_Side]:
        """Straight to a canned upstream, through the gateway, through the floor: the request
        and reply learnt once through ``learner`` (the gateway in front of the real mock)."""
        stream = measure == FIRST_TOKEN
        chat = {**SEED["chat"], "stream": True} if stream else SEED["chat"]
        proxied = BenchRequest(learner + CHAT_ROUTE, json.dumps(chat).encode())
        # the capture is a blocking client: in a thread, while this loop serves it
        direct = await asyncio.to_thread(capture_direct_call, proxied, mock, stream)
        reply = await self.connected(direct.url).send(direct.request_bytes())
        if reply.status != 200:
            raise _Failed(f"the mock answered {reply.status}")
        canned = await self.started(_CannedServer.start(reply, stream))
        gateway = await self.gateway(config, canned.url)
        upstream = canned.url + urlsplit(direct.url).path
        floor = await self.started(start_floor(Floor(upstream, direct.body, direct.body,
                                                     direct.headers)))  # fmt: skip
        targets = (replace(direct, url=upstream), replace(proxied, url=gateway.url + CHAT_ROUTE),
                   replace(proxied, url=floor.url + CHAT_ROUTE))  # fmt: skip
        if stream:
            return [_FirstTokenSide(self.connected(t.url), t, canned.release) for t in targets]
        return [_Side(self.connected(t.url), t) for t in targets]


class _CannedUpstream(asyncio.Protocol):
    """Answers every request on its connection with the same bytes, whatever it asked, and
    tells ``answered`` it did."""

    def __init__(self, answer: bytes, answered: Callable[[asyncio.Transport], None]) -> None:
        self._answer, self._answered = answer, answered
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
        self._answered(self._transport)


class _CannedServer:
    """Replays ``reply``. A stream (``stream``) goes out chunked in two parts: up to its first
    text frame at once, the rest on ``release()``, which the client calls once it has that
    frame."""

    def __init__(self, server: asyncio.Server, rest: bytes,
                 waiting: list[asyncio.Transport]) -> None:  # fmt: skip
        self._server, self._rest, self._waiting = server, rest, waiting
        self.url = f"http://{LOOPBACK}:{server.sockets[0].getsockname()[1]}"

    @classmethod
    async def start(cls, reply: RawReply, stream: bool = False) -> _CannedServer:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {reply.content_type}\r\n"
        if stream:
            cut = first_text_end(reply.body, reply.content_type)
            if cut is None:
                raise _Failed("the mock's stream carried no text")
            answer = f"{head}Transfer-Encoding: chunked\r\n\r\n".encode("latin-1")
            answer, rest = answer + _chunk(reply.body[:cut]), _chunk(reply.body[cut:]) + _chunk(b"")
        else:
            answer = f"{head}Content-Length: {len(reply.body)}\r\n\r\n".encode("latin-1")
            answer, rest = answer + reply.body, b""
        waiting: list[asyncio.Transport] = []
        answered = waiting.append if stream else (lambda transport: None)
        server = await asyncio.get_running_loop().create_server(
            lambda: _CannedUpstream(answer, answered), LOOPBACK, 0)
        return cls(server, rest, waiting)

    def release(self) -> None:
        """The rest of the stream to every request waiting for it."""
        while self._waiting:
            transport = self._waiting.pop()
            if not transport.is_closing():
                transport.write(self._rest)

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


class _Failed(Exception):
    pass


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b"0\r\n\r\n"


class _Side:
    """One request sent again and again on one kept-alive connection, one at a time, each timed
    to the end of its reply."""

    def __init__(self, connection: Connection, target: BenchRequest) -> None:
        self._connection = connection
        self._data = target.request_bytes()
        self.best_us = float("inf")

    async def send(self, count: int) -> None:
        for _ in range(count):
            await self.once()

    async def once(self) -> float:
        start = time.perf_counter()
        _answered(await self._connection.send(self._data))
        return time.perf_counter() - start


async def _batch(sides: Sequence[_Side], count: int) -> None:
    """``count`` requests on each side, the sides taken in turn request by request, so that a
    change of the machine's speed during the batch falls on every side alike; the garbage
    collector held meanwhile. Each side keeps its fastest batch."""
    totals = [0.0] * len(sides)
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            for index, side in enumerate(sides):
                totals[index] += await side.once()
    finally:
        gc.enable()
    for side, total in zip(sides, totals, strict=True):
        side.best_us = min(side.best_us, total / count * 1e6)


class _FirstTokenSide(_Side):
    """A streamed request, timed to its first text; ``release`` lets the rest of the stream go."""

    def __init__(self, connection: Connection, target: BenchRequest,
                 release: Callable[[], None]) -> None:  # fmt: skip
        super().__init__(connection, target)
        self._release = release

    async def once(self) -> float:
        scanner: FirstTextScanner | None = None
        first: float | None = None
        start = time.perf_counter()

        def arrived(content_type: str, piece: bytes) -> None:
            nonlocal scanner, first
            if first is None:
                scanner = scanner or FirstTextScanner(content_type)
                if scanner.feed(piece):
                    first = time.perf_counter() - start
                    self._release()

        _answered(await self._connection.send(self._data, arrived))
        if first is None:
            raise _Failed("the stream carried no text")
        return first


def _answered(reply: RawReply) -> None:
    if reply.status != 200:
        text = " ".join(reply.body[:200].decode("utf-8", "replace").split())
        raise _Failed(f"answered {reply.status}: {text}")


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
             f"µs per request, the fastest of {settings['batches']} batches of "
             f"{settings['requests']:,} a side, the sides in turn request by request;",
             "added = through the gateway - straight to the upstream;",
             "ratio = through / straight; floor = the benchmark's bare pass-through proxy, "
             "sending the same upstream request",
             f"machine: {machine.one_line(report.machine)}"]
    for measure, title in ((REPLY, "a chat request, to the end of its reply"),
                           (FIRST_TOKEN, "a streamed chat request, to its first token")):
        rows = [row for row in report.rows if row.measure == measure]
        if not rows:
            continue
        lines += ["", f"{title} (µs)",
                  f"  {'':<18}{'':>8}{'proxyproof':>28}{'floor':>28}",
                  f"  {'hosting':<18}{'direct':>8}" + f"{'µs':>10}{'added':>10}{'ratio':>8}" * 2]
        lines += [_table_line(row) for row in rows]
    return "\n".join(lines)


def _table_line(row: InProcessRow) -> str:
    if row.error:
        return f"  {row.hosting:<18}n/a ({row.error})"
    line = f"  {row.hosting:<18}{row.direct_us:>8,.1f}"
    for through in (row.proxied_us, row.floor_us):
        line += f"{through:>10,.1f}{row.added_us(through):>10,.1f}{row.ratio(through):>7.2f}x"
    return line


def in_process_json(report: InProcessReport) -> str:
    return json.dumps(report.to_json(), indent=2)
