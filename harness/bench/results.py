"""What a benchmark run found: plain values, with the ratios derived from them (pure).

The figures of one ``Side`` (``--json`` shows them as they are here):

- ``per_second``: requests answered per second (for a streaming row: whole streams, one at a
  time); ``requests``, ``errors``: answered and failed requests of the run;
- ``p50_ms``/``p99_ms``: time from sending a request to the end of its response. Under load for
  mock throughput; on one connection, one request at a time, for the proxy-overhead and
  streaming rows (so it is the cost of a request, not the queue in front of it);
- ``first_token_p50_ms``/``first_token_p99_ms``: streams only, time to the first frame that
  carries text;
- ``server_cpu``: CPU seconds the servers at work (the mock; the mock and the proxy) used per
  wall second, 1.0 = one whole core; ``per_cpu_second``: requests per CPU-second of theirs. Wall
  throughput depends on whatever else runs on the machine, CPU time per request far less;
- ``load_cpu``: the load generator's share of its own core; from ``LOAD_SATURATED`` on, the load
  generator set the pace and the throughput is a lower bound; ``load_cpu_us_per_request``: its
  CPU time per request, to compare with the servers'; ``driver``: ``wrk`` or ``python``;
- ``loaded_p99_ms``: p99 of the throughput run (``concurrency`` connections, queueing included);
- ``cpu_us_per_request``: CPU microseconds of the servers at work per answered request (for the
  proxied side the mock's share is in it: subtract the direct figure for the proxy's own);
- ``chunk_gap_p99_ms``: streams only, p99 of the time between two frames carrying text.

``Comparison.ratios()`` is ``proxied / direct`` of each figure that both sides have.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import stats
from .load import RunResult

BUNDLED = "proxyproof"  # the subject name of the bundled proxy's rows
# Latency figures compared as proxied - direct (ms): name in ``Comparison.added`` -> Side field.
ADDED = {"p50": "p50_ms", "loaded_p99": "loaded_p99_ms", "first_token_p50": "first_token_p50_ms",
         "chunk_gap_p99": "chunk_gap_p99_ms"}
TARGET_PER_SECOND = 3000  # what one mock process must answer on one core (the project's claim)
LOAD_SATURATED = 0.9  # load generator CPU share from which it, not the server, sets the pace


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the direct call or the call through the proxy."""

    per_second: float  # throughput, answered requests per second
    requests: int
    errors: int
    p50_ms: float | None  # until the response is complete (a stream: its total time)
    p99_ms: float | None
    first_token_p50_ms: float | None = None  # streams only
    first_token_p99_ms: float | None = None
    first_error: str = ""
    load_cpu: float = 0.0  # the load generator's share of its own core during the run
    server_cpu: float | None = None  # the servers' CPU seconds per wall second (1 = one core)
    per_cpu_second: float | None = None  # requests per CPU-second of the servers
    loaded_p99_ms: float | None = None  # p99 under load (the throughput run)
    cpu_us_per_request: float | None = None  # the servers' CPU per request
    chunk_gap_p99_ms: float | None = None  # streams only
    load_cpu_us_per_request: float | None = None
    driver: str = "python"

    @property
    def load_bound(self) -> bool:
        """The load generator was (nearly) saturated: the throughput is a lower bound."""
        return self.load_cpu >= LOAD_SATURATED

    @classmethod
    def of(cls, result: RunResult) -> Side:
        used = result.server_cpu
        return cls(
            per_second=result.per_second,
            requests=result.requests,
            errors=result.errors,
            p50_ms=stats.milliseconds(result.latency_p50),
            p99_ms=stats.milliseconds(result.latency_p99),
            first_token_p50_ms=stats.milliseconds(result.first_text_p50),
            first_token_p99_ms=stats.milliseconds(result.first_text_p99),
            first_error=result.first_error,
            load_cpu=result.load_cpu,
            server_cpu=stats.ratio(used, result.seconds),
            per_cpu_second=stats.ratio(float(result.requests), used),
            loaded_p99_ms=stats.milliseconds(result.latency_p99),
            cpu_us_per_request=_micro(stats.ratio(used, float(result.requests))),
            chunk_gap_p99_ms=stats.milliseconds(result.chunk_gap_p99),
            load_cpu_us_per_request=_micro(result.load_cpu_per_request),
            driver=result.driver,
        )

    def with_latency(self, latency: RunResult) -> Side:
        """This throughput with the latencies of a separate, unloaded run."""
        return replace(
            self,
            errors=self.errors + latency.errors,
            p50_ms=stats.milliseconds(latency.latency_p50),
            p99_ms=stats.milliseconds(latency.latency_p99),
            first_error=self.first_error or latency.first_error,
        )


def _micro(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


@dataclass(frozen=True)
class MockThroughput:
    mock: str
    request: str  # "POST /api/chat (stream: false)"
    result: Side

    @property
    def per_core(self) -> float:
        """Requests per second on one core given to the mock: per CPU-second where measured
        (other load on the machine does not count against the mock), else per wall second."""
        found = self.result.per_cpu_second
        return self.result.per_second if found is None else found

    @property
    def meets_target(self) -> bool:
        return self.per_core >= TARGET_PER_SECOND


@dataclass(frozen=True)
class Comparison:
    """One hosting, direct vs through a gateway (``subject``: the bundled proxy, ``BUNDLED``, or
    one named with ``--gateway``); ``unavailable`` says why there are no figures."""

    hosting: str
    upstream: str  # what the direct call sends: "POST /api/chat" (NDJSON) ...
    direct: Side | None = None
    proxied: Side | None = None
    unavailable: str = ""
    subject: str = "proxyproof"
    # several rounds: each of ``figures()``'s lowest and highest over them, to show how far the
    # machine moved it between rounds taken minutes apart
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)

    def added(self) -> dict[str, float]:
        """``proxied - direct`` in milliseconds, for the latency figures both sides have."""
        if self.direct is None or self.proxied is None:
            return {}
        found = {name: _minus(getattr(self.proxied, field), getattr(self.direct, field))
                 for name, field in ADDED.items()}
        return {name: value for name, value in found.items() if value is not None}

    def figures(self) -> dict[str, float]:
        """Every ratio and added latency, named ``ratio:NAME`` and ``added:NAME``."""
        return ({f"ratio:{name}": value for name, value in self.ratios().items()}
                | {f"added:{name}": value for name, value in self.added().items()})

    def ratios(self) -> dict[str, float]:
        """``proxied / direct`` for every figure both sides have."""
        if self.direct is None or self.proxied is None:
            return {}
        d, p = self.direct, self.proxied
        found = {
            "throughput": stats.ratio(p.per_second, d.per_second),
            "per_cpu_second": stats.ratio(p.per_cpu_second, d.per_cpu_second),
            "p50": stats.ratio(p.p50_ms, d.p50_ms),
            "p99": stats.ratio(p.p99_ms, d.p99_ms),
            "first_token_p50": stats.ratio(p.first_token_p50_ms, d.first_token_p50_ms),
            "first_token_p99": stats.ratio(p.first_token_p99_ms, d.first_token_p99_ms),
            "loaded_p99": stats.ratio(p.loaded_p99_ms, d.loaded_p99_ms),
            "cpu_per_request": stats.ratio(p.cpu_us_per_request, d.cpu_us_per_request),
        }
        return {name: value for name, value in found.items() if value is not None}


@dataclass
class BenchReport:
    layout: str
    settings: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)
    load_generator: str = "python"  # the driver of throughput and latency runs
    mock_throughput: list[MockThroughput] = field(default_factory=list)
    overhead: list[Comparison] = field(default_factory=list)
    streaming: list[Comparison] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Failed requests and missing figures, streaming "n/a" excepted (reported, not failed)."""
        sides = [row.result for row in self.mock_throughput]
        sides += [side for row in self.overhead + self.streaming
                  for side in (row.direct, row.proxied) if side is not None]
        return sum(side.errors for side in sides) + sum(
            1 for row in self.overhead if row.unavailable
        )

    @property
    def meets_target(self) -> bool:
        return bool(self.mock_throughput) and all(r.meets_target for r in self.mock_throughput)

    def targets(self) -> list[Any]:
        """The proxy's speed targets, judged (``targets.judge``)."""
        from .targets import judge  # (targets imports this module)

        return judge(self.overhead, self.streaming, int(self.settings.get("concurrency", 0)))

    def to_json(self) -> dict[str, Any]:
        from .targets import LIMITS_SET_AT_MOCK_US

        def comparison(row: Comparison) -> dict[str, Any]:
            found = asdict(row)
            found["ratios"] = row.ratios()
            found["added_ms"] = row.added()
            if not row.unavailable:
                del found["unavailable"]
            return found

        return _rounded({
            "machine": self.machine,
            "layout": self.layout,
            "load_generator": self.load_generator,
            "settings": self.settings,
            "mock_throughput": {
                "target_per_second": TARGET_PER_SECOND,
                "met": self.meets_target,
                "runs": [asdict(row) | {"per_core": row.per_core} for row in self.mock_throughput],
            },
            "proxy_overhead": [comparison(row) for row in self.overhead],
            "streaming": [comparison(row) for row in self.streaming],
            "targets": [asdict(t) | {"met": t.met} for t in self.targets()],
            "time_limits_set_at_mock_cpu_us": list(LIMITS_SET_AT_MOCK_US),
            "errors": self.errors,
        })


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _rounded(value: Any) -> Any:
    """Figures to 4 decimals (0.1 µs in milliseconds): more digits are noise, not precision."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):  # (a tuple: a spread's lowest and highest)
        return [_rounded(item) for item in value]
    return value
