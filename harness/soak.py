"""``proxyproof soak``: a bounded mix of normal, streaming, failing and hostile requests through a
gateway at a steady rate, counted by outcome, with the gateway's resources before and after.

The normal, streaming and failing requests are catalogue cases that need no mock script (scripts
are global to a mock, so they cannot be shared by concurrent requests); hostile requests are
malformed on purpose. A 5xx is *unexpected* unless the case answered it when sent alone and
the oracle accepted it there (an unreachable upstream's 502, Kong's named 500 for a HuggingFace
reply); a hostile request is never owed a 5xx."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .catalogue.model import Case
from .gateway import Gateway
from .resources import Resources
from .runner import MockPlacement, Prepared, prepared

MAX_IN_FLIGHT = 64
REQUEST_TIMEOUT = 30.0
WARM_UP = 0.2, 5.0  # the share of the duration spent warming up, at most so many seconds

# (name, method, headers, body): requests no gateway may answer with a 5xx.
HOSTILE: tuple[tuple[str, str, dict[str, str], bytes], ...] = (
    ("not JSON", "POST", {"Content-Type": "application/json"}, b'{"messages": [ {"role": '),
    ("a JSON array", "POST", {"Content-Type": "application/json"}, b"[1, 2, 3]"),
    ("deep nesting", "POST", {"Content-Type": "application/json"},
     b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("a 5,000-digit number", "POST", {"Content-Type": "application/json"},
     b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}"),
    ("a lone surrogate", "POST", {"Content-Type": "application/json"},
     b'{"messages": [{"role": "user", "content": "\\ud800"}]}'),
    ("invalid UTF-8", "POST", {"Content-Type": "application/json"},
     b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}'),
    ("gzip said, plain sent", "POST",
     {"Content-Type": "application/json", "Content-Encoding": "gzip"},
     b'{"messages": [{"role": "user", "content": "hi"}]}'),
    ("a gzip bomb", "POST", {"Content-Type": "application/json", "Content-Encoding": "gzip"},
     gzip.compress(b'{"prompt": "' + b"a" * 20_000_000 + b'"}')),
    ("an encoding no gateway decodes", "POST",
     {"Content-Type": "application/json", "Content-Encoding": "x-proxyproof"},
     b'{"messages": [{"role": "user", "content": "hi"}]}'),
    ("wrong types", "POST", {"Content-Type": "application/json"},
     b'{"messages": "hi", "stream": "yes", "max_tokens": "many"}'),
    ("a GET", "GET", {}, b""),
)


@dataclass
class SoakReport:
    gateway: str
    duration: float = 0.0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # kind → count
    unexpected_5xx: list[str] = field(default_factory=list)  # first few, with what was sent
    unexpected_5xx_count: int = 0
    failed_connections: int = 0  # well-formed requests the gateway did not answer
    start: Resources = field(default_factory=Resources)
    end: Resources = field(default_factory=Resources)

    @property
    def ok(self) -> bool:
        return self.unexpected_5xx_count == 0 and self.failed_connections == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway, "ok": self.ok, "duration": round(self.duration, 2),
            "sent": self.sent, "outcomes": dict(sorted(self.outcomes.items())),
            "unexpected_5xx": self.unexpected_5xx_count,
            "unexpected_5xx_examples": self.unexpected_5xx,
            "failed_connections": self.failed_connections,
            "resources": {"start": vars(self.start), "end": vars(self.end)},
        }  # fmt: skip


def soak_cases(cases: list[Case]) -> list[Case]:
    """The catalogue cases a soak can send concurrently: no mock script, no slow upstream."""
    return [c for c in cases if c.script is None and not c.service
            and set(c.features) & {"core", "seed", "errors", "options", "streaming"}]


def _kind(case: Case) -> str:
    if case.expect.status not in (None, 200):
        return "failing"
    body = case.request.body
    return "streaming" if isinstance(body, dict) and body.get("stream") else "normal"


class _Soak:
    def __init__(self, ready: Prepared, report: SoakReport, seed: int) -> None:
        self.proxy_url, self.bindings, self.report = ready.proxy_url, ready.bindings, report
        self.random = random.Random(seed)
        # What each case answers on its own, when the oracle accepts it (a pass, or Kong's named
        # deviation: its 500 for a HuggingFace reply, say): the same status under load is no
        # surprise; any other 5xx is.
        self.answers = {b.id: {r.actual["status"]} for b in self.bindings
                        if (r := ready.result(b)).outcome in ("pass", "deviation")}

    def _pick(self) -> tuple[str, str, str, dict[str, str], bytes, Callable[[int], bool]]:
        """(kind, method, url, headers, body, is the status expected)."""
        if self.random.random() < 0.2:
            name, method, headers, body = self.random.choice(HOSTILE)
            path = self.random.choice(self.bindings).path
            return f"hostile: {name}", method, self.proxy_url + path, headers, body, (
                lambda status: status < 500)
        binding = self.random.choice(self.bindings)
        case, request = binding.case, binding.case.request
        body = (request.raw_body.encode() if request.raw_body is not None
                else json.dumps(request.body).encode())
        headers = {"Content-Type": request.content_type or "application/json", **request.headers}
        allowed = self.answers.get(binding.id, set())
        return _kind(case), request.method, self.proxy_url + binding.path, headers, body, (
            lambda status: status < 500 or status in allowed)

    async def one(self, session: aiohttp.ClientSession) -> None:
        kind, method, url, headers, body, expected = self._pick()
        try:
            async with session.request(method, url, data=body, headers=headers) as reply:
                await reply.read()
                status = reply.status
        except (TimeoutError, aiohttp.ClientError) as error:
            # A gateway may hang up on a hostile request; on a well-formed one it is a failure.
            self.report.outcomes[f"{kind}: connection {type(error).__name__}"] += 1
            self.report.failed_connections += not kind.startswith("hostile")
            return
        self.report.outcomes[f"{kind}: {status // 100}xx"] += 1
        if status >= 500 and not expected(status):
            self.report.unexpected_5xx_count += 1
            if len(self.report.unexpected_5xx) < 10:
                self.report.unexpected_5xx.append(f"{status} for {kind} {method} {url}")

    async def run(self, seconds: float, rate: float) -> None:
        """Send at ``rate`` per second for ``seconds``, then wait for every answer: the phase
        ends quiet, its connections closed, so resources measured after it compare."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        limit = asyncio.Semaphore(MAX_IN_FLIGHT)
        pending: set[asyncio.Task[None]] = set()

        async def bounded(session: aiohttp.ClientSession) -> None:
            async with limit:
                await self.one(session)

        async with aiohttp.ClientSession(timeout=timeout) as session:
            started, sent = time.monotonic(), 0
            while (elapsed := time.monotonic() - started) < seconds:
                for _ in range(int(elapsed * rate) + 1 - sent):
                    task = asyncio.create_task(bounded(session))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    sent += 1
                await asyncio.sleep(min(1 / rate, 0.05))  # pacing, not synchronisation
            if pending:
                await asyncio.wait(pending)  # each bounded by REQUEST_TIMEOUT
        self.report.sent += sent


def run_soak(gateway: Gateway, cases: list[Case], duration: float, rate: float, *,
             measure: Callable[[], Resources] | None = None, seed: int = 0,
             user_config: dict[str, Any] | None = None,
             mocks: MockPlacement | None = None) -> SoakReport:
    """Soak ``gateway`` for ``duration`` seconds at ``rate`` requests per second.

    The first part of the time warms the gateway up (pools, caches, lazy imports); resources are
    measured after it and again at the end, both times with no request in flight, so what grew in
    between is what the load left behind. ``measure`` defaults to the gateway's own
    ``resources()`` when it has one (an in-process or locally started gateway)."""
    if duration <= 0 or rate <= 0:
        raise ValueError("duration and rate must be > 0")
    chosen = soak_cases(cases)
    if not chosen:
        raise ValueError("no case can be soaked in this selection")
    report = SoakReport(gateway.name)
    measure = measure or getattr(gateway, "resources", None) or Resources
    warm_up = min(duration * WARM_UP[0], WARM_UP[1])
    started = time.monotonic()
    with prepared(gateway, chosen, user_config, mocks) as ready:
        soak = _Soak(ready, report, seed)
        asyncio.run(soak.run(warm_up, rate))
        report.start = _at_rest(measure)
        asyncio.run(soak.run(duration - warm_up, rate))
        report.end = _at_rest(measure)
    report.duration = time.monotonic() - started
    return report


def _at_rest(measure: Callable[[], Resources], settle: float = 3.0) -> Resources:
    """The gateway's resources once they stop moving: the client hung up its connections, but
    the gateway closes its side (and ends their tasks) a moment later. Two equal readings in a
    row, or the last one after ``settle`` seconds."""
    reading, deadline = measure(), time.monotonic() + settle
    while time.monotonic() < deadline:
        time.sleep(0.05)  # polling for quiet, bounded by the deadline
        previous, reading = reading, measure()
        if (reading.open_fds, reading.tasks) == (previous.open_fds, previous.tasks):
            break
    return reading


def as_text(report: SoakReport) -> str:
    lines = [f"soak of {report.gateway}: {report.sent} requests in {report.duration:.1f} s"]
    lines += [f"  {kind:45} {count}" for kind, count in sorted(report.outcomes.items())]
    lines.append(f"unexpected 5xx: {report.unexpected_5xx_count}")
    if report.failed_connections:
        lines.append(f"well-formed requests left unanswered: {report.failed_connections}")
    lines += [f"  {example}" for example in report.unexpected_5xx]
    for name, unit in (("rss_kib", "KiB resident"), ("open_fds", "open descriptors"),
                       ("tasks", "asyncio tasks")):
        before, after = getattr(report.start, name), getattr(report.end, name)
        if before is not None and after is not None:
            lines.append(f"{unit}: {before} after warm-up, {after} at end")
    return "\n".join(lines)
