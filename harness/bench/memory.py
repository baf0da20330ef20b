"""``proxyproof bench --memory``: the proxy's resident memory under many requests and one big
stream.

1. Many requests: the seed chat request through the bundled proxy (the Ollama hosting) to its
   mock, ``requests`` of them in slices; the proxy's resident size (``VmRSS``) after a warm-up
   and after each slice. Flat means the end is within a few MB of the start and the second half
   adds nothing that the first did not.
2. One big stream, twice: a streaming chat through the proxy (the self-hosted GGUF hosting,
   OpenAI-style SSE) from an upstream that sends ``stream_megabytes`` MB of frames as fast as it
   can (``big_stream_app``: the mocks generate a token per frame, far too slowly for this); the
   client reads it as fast as it can, then slowly (16 kB every 2 ms: a proxy without
   back-pressure would hold the difference). The proxy's resident size is sampled while each
   stream flows: the peak minus the size before it is what relaying it cost.
"""

from __future__ import annotations

import functools
import http.client
import json
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import kong_config
from ..catalogue.loader import SEED
from ..gateway import GatewayApp
from ..hostings import BY_KEY
from ..resources import process_resources
from . import machine
from .http1 import BenchRequest
from .layout import current_layout
from .load import Run
from .servers import LoadGenerator, ServerProcess, mock_factory

FRAME_TEXT = 4000  # characters of content per upstream frame
TARGET_STREAM_MB = 10.0  # what relaying the stream may add (issue 13)
TARGET_GROWTH_MB = 5.0  # what 100,000 requests may add after the warm-up ("flat")
WARMUP_REQUESTS = 2_000
SLOW_PAUSE = 0.002  # seconds after each 16 kB the slow reader takes


@dataclass(frozen=True)
class MemorySettings:
    requests: int = 100_000
    stream_megabytes: int = 50
    slices: int = 10

    def __post_init__(self) -> None:
        if self.requests < self.slices or self.slices < 1:
            raise ValueError(f"--memory-requests must be at least {self.slices}")
        if not 1 <= self.stream_megabytes <= 10_000:
            raise ValueError("--stream-megabytes must be 1 to 10000")


@dataclass
class MemoryReport:
    machine: dict[str, Any]
    settings: dict[str, Any]
    samples: list[tuple[int, float]] = field(default_factory=list)  # (requests sent, RSS MB)
    errors: int = 0
    first_error: str = ""
    stream_bytes: int = 0
    stream_seconds: float = 0.0
    rss_before_stream_mb: float | None = None
    rss_peak_stream_mb: float | None = None
    slow: dict[str, Any] = field(default_factory=dict)  # the same figures, read slowly

    @property
    def growth_mb(self) -> float | None:
        """RSS at the end minus RSS after the warm-up."""
        return self.samples[-1][1] - self.samples[0][1] if len(self.samples) > 1 else None

    @property
    def stream_added_mb(self) -> float | None:
        if self.rss_before_stream_mb is None or self.rss_peak_stream_mb is None:
            return None
        return self.rss_peak_stream_mb - self.rss_before_stream_mb

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine, "settings": self.settings,
            "requests": {"samples": [{"requests": n, "rss_mb": round(mb, 2)}
                                     for n, mb in self.samples],
                         "growth_mb": _round(self.growth_mb), "target_mb": TARGET_GROWTH_MB,
                         "met": _met(self.growth_mb, TARGET_GROWTH_MB)},
            "stream": {"bytes": self.stream_bytes, "seconds": round(self.stream_seconds, 2),
                       "rss_before_mb": _round(self.rss_before_stream_mb),
                       "rss_peak_mb": _round(self.rss_peak_stream_mb),
                       "added_mb": _round(self.stream_added_mb), "target_mb": TARGET_STREAM_MB,
                       "met": _met(self.stream_added_mb, TARGET_STREAM_MB)},
            "slow_stream": self.slow,
            "errors": self.errors, "first_error": self.first_error,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _met(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


# --- the big-stream upstream ------------------------------------------------------------------


def big_stream_app(megabytes: int) -> web.Application:
    """An OpenAI-style chat endpoint whose every reply is a stream of ``megabytes`` MB."""
    frame = ("data: " + json.dumps({
        "id": "chatcmpl-memory", "object": "chat.completion.chunk", "created": 0,
        "model": "llama2", "choices": [{"index": 0, "delta": {"content": "x" * FRAME_TEXT},
                                        "finish_reason": None}]}) + "\n\n").encode()
    last = ("data: " + json.dumps({
        "id": "chatcmpl-memory", "object": "chat.completion.chunk", "created": 0,
        "model": "llama2", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        + "\n\ndata: [DONE]\n\n").encode()
    count = megabytes * 1_000_000 // len(frame) + 1

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(count):
            await response.write(frame)
        await response.write(last)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


# --- the run ------------------------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    found = process_resources(pid).rss_kib
    if found is None:
        raise RuntimeError("cannot read the proxy's resident size (/proc: Linux only)")
    return found / 1024


def _read_stream(url: str, body: bytes, into: dict[str, Any], pause: float = 0.0) -> None:
    """POST ``body`` and read the streamed reply to its end, as fast as possible or with a
    ``pause`` after each 16 kB."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    started = time.perf_counter()
    try:
        connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
        reply = connection.getresponse()
        into["status"] = reply.status
        while piece := reply.read1(1 << 14 if pause else 1 << 16):
            into["bytes"] = into.get("bytes", 0) + len(piece)
            if pause:
                time.sleep(pause)  # a slow client is the point
    except (OSError, http.client.HTTPException) as problem:
        into["error"] = f"{type(problem).__name__}: {problem}"
    finally:
        into["seconds"] = time.perf_counter() - started
        connection.close()


def _relay(url: str, body: bytes, pid: int, pause: float) -> dict[str, Any]:
    """One stream through the proxy ``pid``, its resident size sampled while it flows."""
    before = peak = _rss_mb(pid)
    streamed: dict[str, Any] = {}
    reader = threading.Thread(target=_read_stream, args=(url, body, streamed, pause), daemon=True)
    reader.start()
    while reader.is_alive():
        peak = max(peak, _rss_mb(pid))
        reader.join(0.02)
    peak = max(peak, _rss_mb(pid))
    error = streamed.get("error", "")
    if streamed.get("status") != 200 and not error:
        error = f"status {streamed.get('status')}"
    return {"bytes": streamed.get("bytes", 0), "seconds": round(streamed.get("seconds", 0.0), 2),
            "rss_before_mb": round(before, 2), "rss_peak_mb": round(peak, 2),
            "added_mb": round(peak - before, 2), "error": error}


def run(proxy: GatewayApp, settings: MemorySettings = MemorySettings(),
        progress: Any = lambda line: None) -> MemoryReport:
    layout = current_layout()
    report = MemoryReport(machine.describe(), asdict(settings))
    ollama, gguf = BY_KEY["ollama"], BY_KEY["gguf"]
    with ExitStack() as stack:
        progress("starting the load generator, a mock, a big-stream upstream and two proxies")
        load = stack.enter_context(LoadGenerator(layout.load))
        mock = stack.enter_context(ServerProcess("mock", "ollama", mock_factory("ollama"),
                                                 layout.mocks))
        big = stack.enter_context(ServerProcess(
            "upstream", "big-stream", functools.partial(big_stream_app, settings.stream_megabytes),
            layout.mocks))
        chat_proxy = stack.enter_context(ServerProcess("proxy", "ollama", functools.partial(
            proxy, kong_config.point_at(kong_config.load(ollama.example), mock.url)),
            layout.proxies))
        stream_proxy = stack.enter_context(ServerProcess("proxy", "gguf", functools.partial(
            proxy, kong_config.point_at(kong_config.load(gguf.example), big.url)),
            layout.proxies))
        stream_proxy.wait()
        target = BenchRequest(chat_proxy.url + "/llama2-chat",
                              json.dumps(SEED["chat"]).encode())

        def send(count: int) -> None:
            result = load.measure(Run("throughput", target, count, 3600.0, 32))
            report.errors += result.errors
            report.first_error = report.first_error or result.first_error

        progress(f"warm-up: {WARMUP_REQUESTS:,} requests")
        send(WARMUP_REQUESTS)
        report.samples.append((0, _rss_mb(chat_proxy.pid)))
        size = settings.requests // settings.slices
        for number in range(1, settings.slices + 1):
            send(size)
            report.samples.append((number * size, _rss_mb(chat_proxy.pid)))
            progress(f"{number * size:,} requests: RSS {report.samples[-1][1]:.1f} MB")
        url, body = stream_proxy.url + "/llama2-chat", json.dumps(
            {**SEED["chat"], "stream": True}).encode()
        progress(f"one {settings.stream_megabytes} MB stream, read as fast as possible")
        fast = _relay(url, body, stream_proxy.pid, 0.0)
        report.rss_before_stream_mb, report.rss_peak_stream_mb = fast["rss_before_mb"], \
            fast["rss_peak_mb"]
        report.stream_bytes, report.stream_seconds = fast["bytes"], fast["seconds"]
        progress(f"one {settings.stream_megabytes} MB stream, read slowly")
        report.slow = _relay(url, body, stream_proxy.pid, SLOW_PAUSE)
        report.slow["met"] = _met(report.slow["added_mb"], TARGET_STREAM_MB)
        for found in (fast, report.slow):
            if found["error"]:
                report.errors += 1
                report.first_error = report.first_error or f"the stream: {found['error']}"
    return report


def memory_table(report: MemoryReport) -> str:
    found = report.to_json()
    requests, stream = found["requests"], found["stream"]
    verdict = {True: "met", False: "NOT met", None: "not measured"}
    lines = ["proxyproof bench --memory: the bundled proxy's resident size (RSS)",
             f"machine: {machine.one_line(report.machine)}", "",
             "requests sent   RSS MB"]
    lines += [f"{sample['requests']:>13,}   {sample['rss_mb']:6.1f}"
              for sample in requests["samples"]]
    lines += [f"growth after the warm-up: {requests['growth_mb']} MB (target <= "
              f"{TARGET_GROWTH_MB:g} MB: {verdict[requests['met']]})", "",
              f"one stream of {stream['bytes'] / 1e6:,.1f} MB relayed in {stream['seconds']} s: "
              f"RSS {stream['rss_before_mb']} MB before, {stream['rss_peak_mb']} MB at most, "
              f"+{stream['added_mb']} MB (target <= {TARGET_STREAM_MB:g} MB: "
              f"{verdict[stream['met']]})"]
    slow = found["slow_stream"]
    if slow:
        lines.append(f"the same read slowly, in {slow['seconds']} s: RSS {slow['rss_before_mb']} "
                     f"MB before, {slow['rss_peak_mb']} MB at most, +{slow['added_mb']} MB "
                     f"({verdict[slow['met']]})")
    if report.errors:
        lines.append(f"! {report.errors} failed requests, the first: {report.first_error}")
    return "\n".join(lines)


def memory_json(report: MemoryReport) -> str:
    return json.dumps(report.to_json(), indent=2)
