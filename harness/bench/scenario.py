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

import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from mocks.control import MockControl

from .. import kong_config
from ..hostings import HOSTINGS, Hosting
from ..http import Response, request
from ..seed import SEED_CHAT
from .frames import FirstTextScanner
from .http1 import Target
from .layout import current_layout
from .load import REQUEST_TIMEOUT, Run, RunKind, RunResult
from .results import BenchReport, Comparison, MockThroughput, Side
from .servers import LoadGenerator, ServerProcess

CHAT_ROUTE = "/llama2-chat"
STREAMING_MOCKS = ("ollama", "openai")  # Ollama's NDJSON and OpenAI-style SSE
_MESSAGES = SEED_CHAT["messages"]
MOCK_REQUESTS = (
    ("openai", "/v1/chat/completions", {"model": "llama2", "messages": _MESSAGES}, ""),
    ("ollama", "/api/chat", {"model": "llama2", "messages": _MESSAGES, "stream": False},
     " (stream: false)"),
)
# Headers every hop sets by itself: not replayed from the journal.
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding",
                          "accept-encoding"})


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


class _Bench:
    def __init__(self, settings: BenchSettings, load: LoadGenerator, progress: Progress) -> None:
        self.settings, self.load, self.progress = settings, load, progress

    # --- runs ---------------------------------------------------------------------------------

    def throughput(self, target: Target) -> RunResult:
        s = self.settings
        return self.load.measure(
            Run("throughput", target, s.requests, s.duration, s.concurrency, s.warmup))

    def sequential(self, kind: RunKind, target: Target) -> RunResult:
        """One request at a time: half the time limit (there are more of these runs), and only a
        short warm-up (one connection to open)."""
        s = self.settings
        return self.load.measure(
            Run(kind, target, s.samples, s.duration / 2, 1, min(s.warmup, 0.1)))

    # --- the three sections -------------------------------------------------------------------

    def mock_throughput(self, mock_urls: dict[str, str]) -> list[MockThroughput]:
        rows = []
        for mock, path, body, note in MOCK_REQUESTS:
            self.progress(f"mock throughput: {mock} POST {path}")
            result = self.throughput(Target(mock_urls[mock] + path, _json(body)))
            rows.append(MockThroughput(mock, f"POST {path}{note}", Side.of(result)))
        return rows

    def overhead(self, hosting: Hosting, mock_url: str, proxy_url: str) -> Comparison:
        self.progress(f"proxy overhead: {hosting.name}")
        proxied = Target(proxy_url + CHAT_ROUTE, _json(SEED_CHAT))
        reply, direct = _capture(proxied, mock_url)
        if reply.status != 200 or direct is None:
            return Comparison(hosting.name, "", unavailable=_why(reply, direct))
        sides = {}
        for name, target in (("direct", direct), ("proxied", proxied)):
            loaded = self.throughput(target)
            sides[name] = Side.of(loaded).with_latency(self.sequential("latency", target))
        return Comparison(hosting.name, _describe(direct), sides["direct"], sides["proxied"])

    def streaming(self, hosting: Hosting, mock_url: str, proxy_url: str) -> Comparison:
        self.progress(f"streaming: {hosting.name}")
        proxied = Target(proxy_url + CHAT_ROUTE, _json({**SEED_CHAT, "stream": True}))
        try:
            reply, direct = _capture(proxied, mock_url)
        except OSError as problem:  # e.g. the proxy hung up mid-stream
            return Comparison(hosting.name, "", unavailable=f"the proxy's stream failed: {problem}")
        scanner = FirstTextScanner(reply.headers.get("Content-Type", ""))
        if reply.status != 200 or direct is None:
            return Comparison(hosting.name, "", unavailable=_why(reply, direct))
        if not scanner.feed(reply.body + b"\n\n"):
            return Comparison(hosting.name, _describe(direct),
                              unavailable="the proxy's streamed reply carried no text")
        results = {name: self.sequential("stream", target)
                   for name, target in (("direct", direct), ("proxied", proxied))}
        if results["proxied"].requests == 0:
            return Comparison(hosting.name, _describe(direct),
                              unavailable=f"streams through the proxy failed: "
                                          f"{results['proxied'].first_error}")
        return Comparison(hosting.name, _describe(direct),
                          Side.of(results["direct"]), Side.of(results["proxied"]))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _capture(proxied: Target, mock_url: str) -> tuple[Response, Target | None]:
    """One call through the proxy, and what the mock received for it, as a direct ``Target``."""
    control = MockControl(mock_url)
    control.clear_journal()
    reply = request("POST", proxied.url, proxied.body, dict(proxied.headers),
                    timeout=REQUEST_TIMEOUT)
    received = control.journal()
    control.clear_journal()
    if len(received) != 1:
        return reply, None
    entry = received[0]
    query = f"?{urlencode(entry['query'], doseq=True)}" if entry["query"] else ""
    headers = tuple((name, value) for name, value in entry["headers"].items()
                    if name.lower() not in _HOP_HEADERS)
    body = entry["body"]
    raw = body.encode() if isinstance(body, str) else _json(body)
    return reply, Target(mock_url + entry["path"] + query, raw, headers)


def _why(reply: Response, direct: Target | None) -> str:
    if reply.status != 200:
        text = " ".join(reply.body[:200].decode("utf-8", "replace").split())
        return f"the proxy answered {reply.status}: {text}"
    return "the proxied call did not reach the mock exactly once"


def _describe(target: Target) -> str:
    return f"POST {urlsplit(target.url).path}"


def run_bench(settings: BenchSettings = BenchSettings(), progress: Progress = _quiet
              ) -> BenchReport:
    """Start the servers and the load generator, measure everything, stop them all."""
    layout = current_layout()
    report = BenchReport(layout.describe(), asdict(settings))
    with ExitStack() as stack:
        progress("starting the load generator, the mocks and the proxies")
        load = stack.enter_context(LoadGenerator(layout.load))
        mocks = {hosting.mock: stack.enter_context(
            ServerProcess("mock", hosting.mock, layout.mocks)) for hosting in HOSTINGS}
        proxies = {
            hosting.name: stack.enter_context(ServerProcess(
                "proxy", hosting.name, layout.proxies,
                kong_config.point_at(kong_config.load(hosting.example), mocks[hosting.mock].url),
            ))
            for hosting in HOSTINGS
        }
        for proxy in proxies.values():
            proxy.wait()  # measure only once no server is still starting up on a shared core
        bench = _Bench(settings, load, progress)
        report.mock_throughput = bench.mock_throughput(
            {name: mock.url for name, mock in mocks.items()})
        for hosting in HOSTINGS:
            report.overhead.append(
                bench.overhead(hosting, mocks[hosting.mock].url, proxies[hosting.name].url))
        for hosting in HOSTINGS:
            if hosting.mock in STREAMING_MOCKS:
                report.streaming.append(
                    bench.streaming(hosting, mocks[hosting.mock].url, proxies[hosting.name].url))
    return report
