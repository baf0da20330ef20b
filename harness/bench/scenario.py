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

4. Other gateways (``--gateway``, ``subjects``): the same overhead and streaming comparisons, each
   against the direct call of the request that gateway sent to the mock.

Every figure is compared as ``proxied / direct`` (latencies also as ``proxied - direct``), both
measured back to back on the same machine. Throughput and latency runs use wrk where it is
installed (``load_generator``), streams always the Python client.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.parse import urlsplit

from proxyproof.mocks.control import MockControl

from .. import kong_config
from ..adapters import GatewayError
from ..catalogue.loader import SEED
from ..gateway import GatewayApp
from ..hostings import HOSTINGS, Hosting
from ..http import request
from ..journal import replayed_request
from . import machine, wrk
from .floor import Floor, start_floor
from .frames import FirstTextScanner
from .http1 import BenchRequest
from .layout import Layout, current_layout
from .load import REQUEST_TIMEOUT, Driver, Run, RunKind, RunResult
from .results import BUNDLED, BenchReport, Comparison, MockThroughput, Side
from .servers import LoadGenerator, ServerProcess, mock_factory
from .subjects import FLOOR, GatewaySpec, StartedLiteLLM, external_request

CHAT_ROUTE = "/llama2-chat"
STREAMING_MOCKS = ("ollama", "openai")  # Ollama's NDJSON and OpenAI-style SSE
_MESSAGES = SEED["chat"]["messages"]
MOCK_REQUESTS = (
    ("openai", "/v1/chat/completions", {"model": "llama2", "messages": _MESSAGES}, ""),
    ("ollama", "/api/chat", {"model": "llama2", "messages": _MESSAGES, "stream": False},
     " (stream: false)"),
)


LOAD_GENERATORS = ("auto", "wrk", "python")
T = TypeVar("T")


@dataclass(frozen=True)
class BenchSettings:
    duration: float = 3.0  # seconds per throughput run (the time limit; half for the others)
    requests: int = 50_000  # requests per throughput run (the count limit; python driver only)
    concurrency: int = 32  # kept-alive connections of a throughput run
    samples: int = 2_000  # requests per latency or streaming run, sent one at a time
    warmup: float = 0.3  # uncounted seconds before each run
    load_generator: str = "auto"  # auto: wrk when installed, else python
    hostings: tuple[str, ...] = ()  # Hosting keys to measure; () = all
    gateways: tuple[GatewaySpec, ...] = ()
    rounds: int = 1  # each comparison this many times; the round with the median ratio is kept

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.warmup < 0:
            raise ValueError("duration must be > 0 and warmup >= 0")
        if self.requests < 1 or self.samples < 1 or not 1 <= self.concurrency <= 1024:
            raise ValueError("requests and samples must be >= 1, concurrency 1 to 1024")
        if not 1 <= self.rounds <= 20:
            raise ValueError("rounds must be 1 to 20")
        if self.load_generator not in LOAD_GENERATORS:
            raise ValueError(f"load generator must be one of {', '.join(LOAD_GENERATORS)}")
        unknown = set(self.hostings) - {hosting.key for hosting in HOSTINGS}
        if unknown:
            raise ValueError(f"no such hosting: {', '.join(sorted(unknown))} (one of "
                             f"{', '.join(h.key for h in HOSTINGS)})")
        names = [spec.name for spec in self.gateways]
        if len(set(names)) != len(names):
            raise ValueError("each --gateway needs a name of its own")

    def driver(self) -> Driver:
        """The driver of throughput and latency runs; RuntimeError if wrk is asked for and
        missing."""
        if self.load_generator == "python":
            return "python"
        if wrk.executable() is None:
            if self.load_generator == "wrk":
                raise RuntimeError("--load-generator wrk: wrk is not installed "
                                   "(apt-get install wrk, or --load-generator python)")
            return "python"
        return "wrk"

    def selected(self) -> tuple[Hosting, ...]:
        return tuple(h for h in HOSTINGS if not self.hostings or h.key in self.hostings)


# A smoke run: the built-in client, since a wrk run lasts a second at least (load.MIN_WRK_SECONDS).
QUICK = BenchSettings(duration=0.25, requests=500, concurrency=16, samples=20, warmup=0.05,
                      load_generator="python")

Progress = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


@dataclass(frozen=True)
class _Subject:
    """A gateway in front of a mock, as one row measures it."""

    name: str  # BUNDLED or the --gateway name
    hosting: str  # the row's name: the hosting, or the upstream an external gateway reached
    request: BenchRequest  # the chat request through the gateway (non-streaming)
    stream_request: BenchRequest
    mocks: dict[str, ServerProcess]  # url -> the mock(s) it may reach
    pid: int | None  # the gateway's process, whose CPU time counts; None = not watched


class _Bench:
    def __init__(self, settings: BenchSettings, load: LoadGenerator, progress: Progress) -> None:
        self.settings, self.load, self.progress = settings, load, progress
        self.driver = settings.driver()

    # --- runs ---------------------------------------------------------------------------------

    def throughput(self, target: BenchRequest, servers: tuple[int, ...]) -> RunResult:
        s = self.settings
        return self.load.measure(Run("throughput", target, s.requests, s.duration,
                                     s.concurrency, s.warmup, servers, self.driver))

    def sequential(self, kind: RunKind, target: BenchRequest, servers: tuple[int, ...]
                   ) -> RunResult:
        """One request at a time: half the time limit (there are more of these runs), and only a
        short warm-up (one connection to open)."""
        s = self.settings
        driver: Driver = "python" if kind == "stream" else self.driver
        return self.load.measure(Run(kind, target, s.samples, s.duration / 2, 1,
                                     min(s.warmup, 0.1), servers, driver))

    # --- the sections -------------------------------------------------------------------------

    def mock_throughput(self, mocks: dict[str, ServerProcess]) -> list[MockThroughput]:
        rows = []
        for name, path, body, note in MOCK_REQUESTS:
            if name not in mocks:
                continue
            self.progress(f"mock throughput: {name} POST {path}")
            mock = mocks[name]
            result = self.throughput(BenchRequest(mock.url + path, _json(body)), (mock.pid,))
            rows.append(MockThroughput(name, f"POST {path}{note}", Side.of(result)))
        return rows

    def overhead(self, subject: _Subject) -> Comparison:
        rounds = [self._overhead(subject, round) for round in range(self.settings.rounds)]
        return median_round(rounds, lambda c: c.ratios().get("throughput"))

    def streaming(self, subject: _Subject) -> Comparison:
        rounds = [self._streaming(subject, round) for round in range(self.settings.rounds)]
        return median_round(rounds, lambda c: c.added().get("first_token_p50"))

    def _round(self, round: int) -> str:
        return f" (round {round + 1} of {self.settings.rounds})" if self.settings.rounds > 1 else ""

    def _overhead(self, subject: _Subject, round: int) -> Comparison:
        self.progress(f"overhead: {subject.name}, {subject.hosting}{self._round(round)}")
        try:
            direct, mock = capture(subject.request, subject.mocks)
        except Unavailable as problem:
            return Comparison(subject.hosting, "", unavailable=str(problem), subject=subject.name)
        sides = {}
        for side, target, servers in _sides(subject, mock, direct, subject.request):
            loaded = self.throughput(target, servers)
            sides[side] = Side.of(loaded).with_latency(self.sequential("latency", target, servers))
        if subject.pid is None:  # a running gateway: its CPU time is not ours to read
            sides["proxied"] = replace(sides["proxied"], server_cpu=None, per_cpu_second=None,
                                       cpu_us_per_request=None)
        return Comparison(subject.hosting, _describe(direct), sides["direct"], sides["proxied"],
                          subject=subject.name)

    def _streaming(self, subject: _Subject, round: int) -> Comparison:
        self.progress(f"streaming: {subject.name}, {subject.hosting}{self._round(round)}")
        try:
            direct, mock = capture(subject.stream_request, subject.mocks, stream=True)
        except Unavailable as problem:
            return Comparison(subject.hosting, "", unavailable=str(problem), subject=subject.name)
        results = {side: self.sequential("stream", target, servers)
                   for side, target, servers in _sides(subject, mock, direct,
                                                                  subject.stream_request)}
        if results["proxied"].requests == 0:
            return Comparison(subject.hosting, _describe(direct), unavailable="streams through "
                              f"the gateway failed: {results['proxied'].first_error}",
                              subject=subject.name)
        return Comparison(subject.hosting, _describe(direct), Side.of(results["direct"]),
                          Side.of(results["proxied"]), subject=subject.name)

    def both(self, subject: _Subject, report: BenchReport, stream: bool) -> None:
        report.overhead.append(self.overhead(subject))
        if stream:
            report.streaming.append(self.streaming(subject))


def median_round(rounds: list[Comparison], figure: Callable[[Comparison], float | None]
                 ) -> Comparison:
    """The round whose ``figure`` is the median of the rounds that have it (the lower middle
    one of an even count): one whole round, so a row's figures come from the same runs; with
    its ``spread`` over those rounds."""
    measured = sorted((c for c in rounds if figure(c) is not None), key=figure)  # type: ignore[arg-type, return-value]
    if not measured:
        return rounds[-1]
    kept = measured[(len(measured) - 1) // 2]
    if len(measured) == 1:
        return kept
    spread: dict[str, tuple[float, float]] = {}
    for row in measured:
        for name, value in row.figures().items():
            low, high = spread.get(name, (value, value))
            spread[name] = (min(low, value), max(high, value))
    return replace(kept, spread=spread)


def _sides(subject: _Subject, mock: ServerProcess, direct: BenchRequest, through: BenchRequest
           ) -> tuple[tuple[str, BenchRequest, tuple[int, ...]], ...]:
    """Each side of a comparison: its name, its request and the servers doing the work."""
    gateway = () if subject.pid is None else (subject.pid,)
    return (("direct", direct, (mock.pid,)), ("proxied", through, (mock.pid, *gateway)))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Unavailable(Exception):
    """Why a row has no figures (the proxy cannot do this call yet, or the mock misbehaved)."""


def capture(proxied: BenchRequest, mocks: Mapping[str, T], stream: bool = False
            ) -> tuple[BenchRequest, T]:
    """One call through the gateway, and what the mock it reached received for it, as a direct
    request; with that mock."""
    controls = {url: MockControl(url) for url in mocks}
    try:
        _settle(list(controls.values()))
        reply = request("POST", proxied.url, proxied.body, dict(proxied.headers),
                        timeout=REQUEST_TIMEOUT)
        received = {url: control.journal() for url, control in controls.items()}
        for control in controls.values():
            control.clear_journal()
    except (OSError, HTTPException, RuntimeError, ValueError, LookupError) as problem:
        raise Unavailable(f"the capture call failed: {type(problem).__name__}: {problem}"
                           ) from None
    if reply.status != 200:
        text = " ".join(reply.body[:200].decode("utf-8", "replace").split())
        raise Unavailable(f"the gateway answered {reply.status}: {text}")
    scanner = FirstTextScanner(reply.headers.get("Content-Type", ""))
    if stream and not scanner.feed(reply.body + b"\n\n"):  # a blank line ends the last event
        raise Unavailable("the gateway's streamed reply carried no text")
    reached = [(url, calls) for url, calls in received.items() if calls]
    if len(reached) != 1 or len(reached[0][1]) != 1:
        count = sum(len(calls) for calls in received.values())
        raise Unavailable(f"the gateway's call reached the mocks {count} times, not once")
    url, calls = reached[0]
    again = replayed_request(calls[0], url)
    return BenchRequest(again.url, again.body, again.headers), mocks[url]


def _settle(controls: list[MockControl], quiet: float = 0.3) -> None:
    """Clear the journals once no request has reached the mocks for ``quiet`` seconds: a
    gateway may still be working off the requests of a run that has ended (wrk closes its
    connections at the time limit, a slow gateway answers them later). At most
    ``REQUEST_TIMEOUT``; what is still arriving then makes the capture fail, as it should."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while True:
        for control in controls:
            control.clear_journal()
        time.sleep(quiet)  # a quiet spell is the thing measured: nothing to wait on instead
        if not any(control.journal() for control in controls) or time.monotonic() > deadline:
            for control in controls:
                control.clear_journal()
            return


def capture_direct_call(proxied: BenchRequest, mock_url: str, stream: bool = False
                        ) -> BenchRequest:
    """``capture`` with one mock: the direct request only."""
    return capture(proxied, {mock_url: mock_url}, stream)[0]


def _describe(target: BenchRequest) -> str:
    return f"POST {urlsplit(target.url).path}"


def _bundled(hosting: Hosting, mock: ServerProcess, proxy: ServerProcess) -> _Subject:
    url = proxy.url + CHAT_ROUTE
    return _Subject(BUNDLED, hosting.name, BenchRequest(url, _json(SEED["chat"])),
                    BenchRequest(url, _json({**SEED["chat"], "stream": True})),
                    {mock.url: mock}, proxy.pid)


def _mock_port(name: str, settings: BenchSettings) -> int:
    """An external gateway is set up for the usual ports; otherwise any free one."""
    from proxyproof.mocks import kind

    return kind(name).default_port if any(g.external for g in settings.gateways) else 0


def run_bench(proxy: GatewayApp, settings: BenchSettings = BenchSettings(),
              progress: Progress = _quiet) -> BenchReport:
    """Start the servers and the load generator, measure everything, stop them all.

    ``proxy`` builds the gateway under test from a Kong config; it runs in processes of its own,
    so it must be picklable (a module-level function or a partial of one)."""
    layout = current_layout()
    selected = settings.selected()
    driver = settings.driver()  # a missing wrk is said before anything starts
    shown = asdict(settings) | {"gateways": [spec.shown() for spec in settings.gateways]}
    report = BenchReport(layout.describe(), shown, machine.describe(), driver)
    started = machine.cpu_times()
    with ExitStack() as stack:
        progress("starting the load generator, the mocks and the proxies")
        load = stack.enter_context(LoadGenerator(layout.load))
        wanted = {h.mock for h in selected} | (
            set(STREAMING_MOCKS) if any(g.external for g in settings.gateways) else set())
        mocks = {name: stack.enter_context(ServerProcess(
            "mock", name, mock_factory(name), layout.mocks, _mock_port(name, settings)))
            for name in sorted(wanted)}
        proxies = {
            hosting.key: stack.enter_context(ServerProcess(
                "proxy", hosting.name, functools.partial(proxy, kong_config.point_at(
                    kong_config.load(hosting.example), mocks[hosting.mock].url)),
                layout.proxies,
            ))
            for hosting in selected
        }
        for each in proxies.values():
            each.wait()  # measure only once no server is still starting up on a shared core
        bench = _Bench(settings, load, progress)
        report.mock_throughput = bench.mock_throughput(mocks)
        bundled = {hosting.key: _bundled(hosting, mocks[hosting.mock], proxies[hosting.key])
                   for hosting in selected}
        for hosting in selected:
            bench.both(bundled[hosting.key], report, hosting.mock in STREAMING_MOCKS)
        for spec in settings.gateways:
            if spec.name == FLOOR and not spec.external:
                _measure_floor(bench, report, selected, bundled, layout, progress)
            else:
                _measure_gateway(spec, bench, report, selected, mocks, layout, progress)
    report.machine["stolen"] = machine.stolen_share(started, machine.cpu_times())
    return report


def _measure_gateway(spec: GatewaySpec, bench: _Bench, report: BenchReport,
                     selected: tuple[Hosting, ...], mocks: dict[str, ServerProcess],
                     layout: Layout, progress: Progress) -> None:
    chat, streamed = SEED["chat"], {**SEED["chat"], "stream": True}
    if spec.external:
        streaming = {mocks[name].url: mocks[name] for name in STREAMING_MOCKS}
        subject = _Subject(spec.name, "", external_request(spec, chat),
                           external_request(spec, streamed), streaming, None)
        try:
            _, reached = capture(subject.request, streaming)
        except Unavailable as problem:
            report.overhead.append(Comparison(spec.url, "", unavailable=str(problem),
                                              subject=spec.name))
            return
        bench.both(replace(subject, hosting=_UPSTREAMS[reached.name]), report, True)
        return
    for hosting in selected:
        if hosting.mock not in STREAMING_MOCKS:  # raw formats: LiteLLM has no such provider
            continue
        progress(f"starting {spec.name} for {hosting.name}")
        # A mock of its own: requests the bundled proxy may still be finishing stay out of the
        # journal that tells what this gateway sent.
        with ServerProcess("mock", hosting.mock, mock_factory(hosting.mock), layout.mocks
                           ) as mock:
            config = kong_config.point_at(kong_config.load(hosting.example), mock.url)
            try:
                started = StartedLiteLLM(config, layout.proxies)
            except GatewayError as problem:
                report.overhead.append(Comparison(hosting.name, "", unavailable=str(problem),
                                                  subject=spec.name))
                continue
            with started:
                bench.both(_Subject(spec.name, hosting.name, started.request(chat),
                                    started.request(streamed), {mock.url: mock}, started.pid),
                           report, True)


def _measure_floor(bench: _Bench, report: BenchReport, selected: tuple[Hosting, ...],
                   bundled: dict[str, _Subject], layout: Layout, progress: Progress) -> None:
    """The floor in front of each hosting's mock, sending what the bundled proxy sent."""
    for hosting in selected:
        subject = bundled[hosting.key]
        stream = hosting.mock in STREAMING_MOCKS
        progress(f"starting the floor for {hosting.name}")
        try:
            direct, _ = capture(subject.request, subject.mocks)
            streamed = capture(subject.stream_request, subject.mocks, stream=True)[0] if stream \
                else direct
        except Unavailable as problem:
            report.overhead.append(Comparison(hosting.name, "", unavailable=f"the bundled proxy "
                                              f"gave no request to copy: {problem}", subject=FLOOR))
            continue
        floor = Floor(direct.url, direct.body, streamed.body, direct.headers)
        with ServerProcess("floor", hosting.name, floor, layout.proxies, start=start_floor
                           ) as server:
            url = server.wait() + CHAT_ROUTE
            bench.both(replace(subject, name=FLOOR, pid=server.pid,
                               request=replace(subject.request, url=url),
                               stream_request=replace(subject.stream_request, url=url)),
                       report, stream)


_UPSTREAMS = {"ollama": "Ollama", "openai": "OpenAI-style"}
