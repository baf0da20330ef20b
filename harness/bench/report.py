"""The benchmark report as a terminal table or JSON (pure: a ``BenchReport`` in, text out)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from . import machine
from .results import BUNDLED, TARGET_PER_SECOND, BenchReport, Comparison, Side
from .targets import machine_pace

NA = "n/a"


def _count(value: float | None) -> str:
    return NA if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}x"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 1
          ) -> list[str]:
    """The first ``text_columns`` left-aligned, figures right-aligned, indented by two."""
    table = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [cell.ljust(width) if i < text_columns else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        return "  " + "  ".join(cells).rstrip()

    return [line(table[0]), "  " + "  ".join("-" * width for width in widths),
            *map(line, table[1:])]


def _share(value: float | None) -> str:
    return NA if value is None else f"{value:.0%}"


def _mock_section(report: BenchReport) -> list[str]:
    concurrency = report.settings["concurrency"]
    lines = [f"Mock throughput: one mock process on one core, {concurrency} kept-alive "
             "connections;", "per core = answered per CPU-second of the mock (other load on the "
             "machine does not count)"]
    rows = [(row.mock, row.request, _count(row.result.per_second),
             _share(row.result.server_cpu), _count(row.per_core), _count(row.result.requests),
             str(row.result.errors), _share(row.result.load_cpu))
            for row in report.mock_throughput]
    lines += _grid(("mock", "request", "req/s", "mock CPU", "per core", "requests", "errors",
                    "load gen CPU"), rows, text_columns=2)
    verdict = "met" if report.meets_target else "NOT met"
    lines.append(f"  target: >= {TARGET_PER_SECOND:,} req/s per core for each mock: {verdict}")
    for row in report.mock_throughput:
        lines += _side_notes(row.mock, row.result)
    return lines


def _compared(rows: Sequence[Comparison]) -> list[tuple[Comparison, Side, Side, dict]]:
    return [(row, row.direct, row.proxied, row.ratios()) for row in rows
            if row.direct is not None and row.proxied is not None]


def _us(value: float | None) -> str:
    return NA if value is None else f"{value:,.0f}"


def _with_ratio(figure: str, ratio: float | None) -> str:
    return figure if ratio is None else f"{figure} ({ratio:.2f}x)"


def _summary_section(report: BenchReport) -> list[str]:
    """The issue's table: one row per upstream called directly, then one per gateway and
    hosting; ratios to the direct call of the same upstream request."""
    c = report.settings.get("concurrency")
    streams = {(row.subject, row.hosting): row for row in report.streaming
               if row.direct and row.proxied}
    header = ("subject", "hosting", "p50 c=1 ms", f"req/s c={c}", f"p99 c={c} ms",
              "1st token ms", "chunk gap p99 ms", "CPU µs/req")
    rows: list[tuple[str, ...]] = []
    for row, d, p, r in _compared(report.overhead):
        stream = streams.get((row.subject, row.hosting))
        sd = stream.direct if stream else None
        sp = stream.proxied if stream else None
        sr = stream.ratios() if stream else {}
        if row.subject == BUNDLED:
            rows.append(("direct to the mock", row.hosting, _ms(d.p50_ms),
                         _count(d.per_second), _ms(d.loaded_p99_ms),
                         _ms(sd.first_token_p50_ms if sd else None),
                         _ms(sd.chunk_gap_p99_ms if sd else None), _us(d.cpu_us_per_request)))
        rows.append((row.subject, row.hosting, _with_ratio(_ms(p.p50_ms), r.get("p50")),
                     _with_ratio(_count(p.per_second), r.get("throughput")),
                     _with_ratio(_ms(p.loaded_p99_ms), r.get("loaded_p99")),
                     _with_ratio(_ms(sp.first_token_p50_ms if sp else None),
                                 sr.get("first_token_p50")),
                     _ms(sp.chunk_gap_p99_ms if sp else None),
                     _with_ratio(_us(p.cpu_us_per_request), r.get("cpu_per_request"))))
    lines = ["Summary: non-streaming chat; p50 one request at a time; req/s and p99 with "
             f"{c} connections;", "first token (p50) and the gap between chunks (p99) one stream "
             "at a time; CPU = the servers' (mock + gateway) per request;",
             "(ratio) = gateway / the direct call of the request it sent"]
    if not rows:
        return [*lines, "  no figures"]
    return lines + _grid(header, rows, text_columns=2)


def _targets_section(report: BenchReport) -> list[str]:
    lines = ["Targets (the bundled proxy, worst hosting; added = proxied - direct)"]
    lines += [f"  {target.describe()}" for target in report.targets()]
    pace = machine_pace(report.overhead)
    return lines + [f"  ({pace})"] if pace else lines


def _load_section(report: BenchReport) -> list[str]:
    """What the load generator cost, against what the servers cost."""
    # the direct calls of the bundled proxy's rows: the fastest servers, the most requests
    sides = [row.direct for row in report.overhead if row.subject == BUNDLED
             and row.direct is not None and row.direct.load_cpu_us_per_request is not None]
    if not sides:
        return []
    share = max(side.load_cpu for side in sides)
    cost = [side.load_cpu_us_per_request for side in sides]
    servers = [side.cpu_us_per_request for side in sides if side.cpu_us_per_request]
    least = f", a mock {min(servers):,.0f} µs or more" if servers else ""
    return [f"Load generator: {report.load_generator}, {min(cost):,.0f} to {max(cost):,.0f} µs "
            f"of CPU per request at full speed{least}; at most {share:.0%} of its core"]


def _overhead_section(rows: Sequence[Comparison]) -> list[str]:
    lines = ["Proxy overhead: POST /llama2-chat through the proxy vs the request the proxy sends,",
             "sent to the mock directly; ratio = proxied / direct.",
             "Throughput under load; per CPU-s = answered per CPU-second of the servers at work",
             "(direct: the mock; proxied: the mock and the proxy)"]
    if not _compared(rows):
        return [*lines, "  no figures:", *_comparison_notes(rows)]
    lines += _grid(
        ("hosting", "req/s direct", "proxied", "ratio", "per CPU-s direct", "proxied", "ratio"),
        [(_name(row), _count(d.per_second), _count(p.per_second), _ratio(r.get("throughput")),
          _count(d.per_cpu_second), _count(p.per_cpu_second), _ratio(r.get("per_cpu_second")))
         for row, d, p, r in _compared(rows)])
    lines.append("Latency, one request at a time (ms)")
    lines += _grid(
        ("hosting", "p50 direct", "proxied", "ratio", "p99 direct", "proxied", "ratio"),
        [(_name(row), _ms(d.p50_ms), _ms(p.p50_ms), _ratio(r.get("p50")),
          _ms(d.p99_ms), _ms(p.p99_ms), _ratio(r.get("p99")))
         for row, d, p, r in _compared(rows)])
    return lines + _comparison_notes(rows)


def _streaming_section(rows: Sequence[Comparison]) -> list[str]:
    lines = ["Streaming: one stream at a time, p50 times (ms) to the first token and to the end "
             "of the stream;", "ratio = proxied / direct"]
    if not _compared(rows):
        return [*lines, "  no figures:", *_comparison_notes(rows)]
    lines += _grid(
        ("hosting", "upstream", "1st token direct", "proxied", "ratio", "total direct",
         "proxied", "ratio"),
        [(_name(row), row.upstream, _ms(d.first_token_p50_ms), _ms(p.first_token_p50_ms),
          _ratio(r.get("first_token_p50")), _ms(d.p50_ms), _ms(p.p50_ms), _ratio(r.get("p50")))
         for row, d, p, r in _compared(rows)],
        text_columns=2)
    return lines + _comparison_notes(rows)


def _name(row: Comparison) -> str:
    return row.hosting if row.subject == BUNDLED else f"{row.subject}: {row.hosting}"


def _comparison_notes(rows: Sequence[Comparison]) -> list[str]:
    lines = []
    for row in rows:
        if row.unavailable:
            lines.append(f"  {_name(row)}: {NA} ({row.unavailable})")
        for name, side in (("direct", row.direct), ("proxied", row.proxied)):
            lines += _side_notes(f"{_name(row)} {name}", side)
    return lines


def _side_notes(label: str, side: Side | None) -> list[str]:
    if side is None:
        return []
    lines = []
    if side.errors:
        lines.append(f"  ! {label}: {side.errors} failed requests, the first: {side.first_error}")
    if side.load_bound:
        lines.append(f"  ~ {label}: the load generator used {side.load_cpu:.0%} of its core, "
                     "so this throughput is a lower bound")
    return lines


def table(report: BenchReport) -> str:
    lines = ["proxyproof bench: speed as ratios against a direct call"]
    if report.machine:
        lines.append(f"machine: {machine.one_line(report.machine)}")
    lines += [f"layout: {report.layout}", *_load_section(report), ""]
    lines += [*_summary_section(report), "", *_targets_section(report), ""]
    lines += _mock_section(report)
    lines += ["", *_overhead_section(report.overhead), "",
              *_streaming_section(report.streaming)]
    return "\n".join(lines)


def as_json(report: BenchReport) -> str:
    return json.dumps(report.to_json(), indent=2)
