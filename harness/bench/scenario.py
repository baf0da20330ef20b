"""What ``proxyproof bench`` measures, in order, and how the direct call is made comparable.

1. Mock throughput: a small non-streaming chat request to one mock process (OpenAI-style
   ``/v1/chat/completions``, Ollama ``/api/chat``), ``concurrency`` kept-alive connections.
2. Proxy overhead, per hosting (each ``examples/*.yaml`` pointed at its mock): the seed chat
   request through the proxy, against the very request the proxy sends upstream — captured from
   the mock's journal after one proxied call — sent to the mock directly. Throughput under load,
   latency p50/p99 unloaded (one connection).
3. Streaming, Ollama (NDJSON upstream) and self-hosted GGUF (OpenAI SSE upstream): time to the
   first token and to the end of the stream, one stream at a time. When the proxy cannot stream
   yet, the row says "n/a" and why instead of failing the run.

Every figure is compared as ``proxied / direct``, both measured back to back on the same machine.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from proxyproof.mocks.control import MockControl

from .. import kong_config
from ..catalogue.loader import SEED
from ..gateway import GatewayApp
from ..hostings import HOSTINGS, Hosting
from ..http import request
from ..journal import replayed_request
from .frames import FirstTextScanner
from .http1 import BenchRequest
from .layout import current_layout
from .load import REQUEST_TIMEOUT, Run, RunKind, RunResult
from .results import BenchReport, Comparison, MockThroughput, Side
from .servers import LoadGenerator, ServerProcess, mock_factory

CHAT_ROUTE = "/llama2-chat"
STREAMING_MOCKS = ("ollama", "openai")  # Ollama's NDJSON and OpenAI-style SSE
_MESSAGES = SEED["chat"]["messages"]
MOCK_REQUESTS = (
    ("openai", "/v1/chat/completions", {"model": "llama2", "messages": _MESSAGES}, ""),
    ("ollama", "/api/chat", {"model": "llama2", "messages": _MESSAGES, "stream": False},
     " (stream: false)"),
)


@dataclass(frozen=True)
class BenchSettings:
    duration: float = 3.0  # seconds per throughput run (the time limit; half for the others)
    requests: int = 50_000  # requests per throughput run (the count limit)
    concurrency: int = 48  # kept-alive connections of a throughput run
    samples: int = 2_000  # requests per latency or streaming run, sent one at a time
    warmup: float = 0.3  # uncounted seconds before each run

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.warmup < 0:
            raise ValueError("duration must be > 0 and warmup >= 0")
        if self.requests < 1 or self.samples < 1 or not 1 <= self.concurrency <= 1024:
            raise ValueError("requests and samples must be >= 1, concurrency 1 to 1024")


QUICK = BenchSettings(duration=0.25, requests=500, concurrency=16, samples=20, warmup=0.05)

Progress = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass(frozen=True)
class _Hosted:
    """A hosting with its mock and its proxy running."""

    hosting: Hosting
    mock: ServerProcess
    proxy: ServerProcess


class _Bench:
    def __init__(self, settings: BenchSettings, load: LoadGenerator, progress: Progress) -> None:
        self.settings, self.load, self.progress = settings, load, progress

    # --- runs ---------------------------------------------------------------------------------

    def throughput(self, target: BenchRequest, servers: tuple[int, ...]) -> RunResult:
        s = self.settings
        return self.load.measure(Run("throughput", target, s.requests, s.duration,
                                     s.concurrency, s.warmup, servers))

    def sequential(self, kind: RunKind, target: BenchRequest, servers: tuple[int, ...]
                   ) -> RunResult:
        """One request at a time: half the time limit (there are more of these runs), and only a
        short warm-up (one connection to open)."""
        s = self.settings
        return self.load.measure(
            Run(kind, target, s.samples, s.duration / 2, 1, min(s.warmup, 0.1), servers))

    # --- the three sections -------------------------------------------------------------------

    def mock_throughput(self, mocks: dict[str, ServerProcess]) -> list[MockThroughput]:
        rows = []
        for name, path, body, note in MOCK_REQUESTS:
            self.progress(f"mock throughput: {name} POST {path}")
            mock = mocks[name]
            result = self.throughput(BenchRequest(mock.url + path, _json(body)), (mock.pid,))
            rows.append(MockThroughput(name, f"POST {path}{note}", Side.of(result)))
        return rows

    def overhead(self, hosted: _Hosted) -> Comparison:
        name = hosted.hosting.name
        self.progress(f"proxy overhead: {name}")
        proxied = BenchRequest(hosted.proxy.url + CHAT_ROUTE, _json(SEED["chat"]))
        try:
            direct = capture_direct_call(proxied, hosted.mock.url)
        except Unavailable as problem:
            return Comparison(name, "", unavailable=str(problem))
        sides = {}
        for side, target, servers in _sides(hosted, direct, proxied):
            loaded = self.throughput(target, servers)
            sides[side] = Side.of(loaded).with_latency(self.sequential("latency", target, servers))
        return Comparison(name, _describe(direct), sides["direct"], sides["proxied"])

    def streaming(self, hosted: _Hosted) -> Comparison:
        name = hosted.hosting.name
        self.progress(f"streaming: {name}")
        streaming = {**SEED["chat"], "stream": True}
        proxied = BenchRequest(hosted.proxy.url + CHAT_ROUTE, _json(streaming))
        try:
            direct = capture_direct_call(proxied, hosted.mock.url, stream=True)
        except Unavailable as problem:
            return Comparison(name, "", unavailable=str(problem))
        results = {side: self.sequential("stream", target, servers)
                   for side, target, servers in _sides(hosted, direct, proxied)}
        if results["proxied"].requests == 0:
            return Comparison(name, _describe(direct), unavailable="streams through the proxy "
                              f"failed: {results['proxied'].first_error}")
        return Comparison(name, _describe(direct),
                          Side.of(results["direct"]), Side.of(results["proxied"]))


def _sides(hosted: _Hosted, direct: BenchRequest, proxied: BenchRequest
           ) -> tuple[tuple[str, BenchRequest, tuple[int, ...]], ...]:
    """Each side of a comparison: its name, its request and the servers doing the work."""
    return (("direct", direct, (hosted.mock.pid,)),
            ("proxied", proxied, (hosted.mock.pid, hosted.proxy.pid)))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Unavailable(Exception):
    """Why a row has no figures (the proxy cannot do this call yet, or the mock misbehaved)."""


def capture_direct_call(proxied: BenchRequest, mock_url: str, stream: bool = False
                        ) -> BenchRequest:
    """One call through the proxy, and what the mock received for it, as a direct request."""
    control = MockControl(mock_url)
    try:
        control.clear_journal()
        reply = request("POST", proxied.url, proxied.body, dict(proxied.headers),
                        timeout=REQUEST_TIMEOUT)
        received = control.journal()
        control.clear_journal()
    except (OSError, HTTPException, RuntimeError, ValueError, LookupError) as problem:
        raise Unavailable(f"the capture call failed: {type(problem).__name__}: {problem}"
                           ) from None
    if reply.status != 200:
        text = " ".join(reply.body[:200].decode("utf-8", "replace").split())
        raise Unavailable(f"the proxy answered {reply.status}: {text}")
    scanner = FirstTextScanner(reply.headers.get("Content-Type", ""))
    if stream and not scanner.feed(reply.body + b"\n\n"):  # a blank line ends the last event
        raise Unavailable("the proxy's streamed reply carried no text")
    if len(received) != 1:
        raise Unavailable(f"the proxied call reached the mock {len(received)} times, not once")
    again = replayed_request(received[0], mock_url)
    return BenchRequest(again.url, again.body, again.headers)


def _describe(target: BenchRequest) -> str:
    return f"POST {urlsplit(target.url).path}"


def run_bench(proxy: GatewayApp, settings: BenchSettings = BenchSettings(),
              progress: Progress = _quiet) -> BenchReport:
    """Start the servers and the load generator, measure everything, stop them all.

    ``proxy`` builds the gateway under test from a Kong config; it runs in processes of its own,
    so it must be picklable (a module-level function or a partial of one)."""
    layout = current_layout()
    report = BenchReport(layout.describe(), asdict(settings))
    with ExitStack() as stack:
        progress("starting the load generator, the mocks and the proxies")
        load = stack.enter_context(LoadGenerator(layout.load))
        mocks = {hosting.mock: stack.enter_context(
            ServerProcess("mock", hosting.mock, mock_factory(hosting.mock), layout.mocks))
            for hosting in HOSTINGS}
        hosted = [
            _Hosted(hosting, mocks[hosting.mock], stack.enter_context(ServerProcess(
                "proxy", hosting.name, functools.partial(proxy, kong_config.point_at(
                    kong_config.load(hosting.example), mocks[hosting.mock].url)),
                layout.proxies,
            )))
            for hosting in HOSTINGS
        ]
        for each in hosted:
            each.proxy.wait()  # measure only once no server is still starting up on a shared core
        bench = _Bench(settings, load, progress)
        report.mock_throughput = bench.mock_throughput(mocks)
        report.overhead = [bench.overhead(each) for each in hosted]
        report.streaming = [bench.streaming(each) for each in hosted
                            if each.hosting.mock in STREAMING_MOCKS]
    return report
