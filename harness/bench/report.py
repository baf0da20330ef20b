"""The benchmark report as a terminal table or JSON (pure: a ``BenchReport`` in, text out)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .results import TARGET_PER_SECOND, BenchReport, Comparison, Side

NA = "n/a"


def _count(value: float | None) -> str:
    return NA if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}x"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned figures, two spaces between columns."""
    table = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  " + "  ".join(cells).rstrip()

    return [line(table[0]), "  " + "  ".join("-" * width for width in widths),
            *map(line, table[1:])]


def _mock_section(report: BenchReport) -> list[str]:
    concurrency = report.settings["concurrency"]
    lines = [f"Mock throughput: one mock process, one core, {concurrency} kept-alive connections"]
    rows = [(row.mock, row.request, _count(row.result.per_second), _count(row.result.requests),
             str(row.result.errors)) for row in report.mock_throughput]
    lines += _grid(("mock", "request", "req/s", "requests", "errors"), rows)
    verdict = "met" if report.meets_target else "NOT met"
    lines.append(f"  target >= {TARGET_PER_SECOND:,} req/s per mock: {verdict}")
    return lines


def _unavailable(rows: Sequence[Comparison]) -> list[str]:
    return [f"  {row.hosting}: {NA} ({row.unavailable})" for row in rows if row.unavailable]


def _overhead_section(rows: Sequence[Comparison]) -> list[str]:
    lines = ["Proxy overhead: POST /llama2-chat through the proxy vs the same upstream request "
             "sent directly (ratio = proxied / direct; throughput under load, latency unloaded)"]
    header = ("hosting", "req/s direct", "proxied", "ratio",
              "p50 ms direct", "proxied", "ratio", "p99 ms direct", "proxied", "ratio")
    table = []
    for row in rows:
        if row.direct is None or row.proxied is None:
            continue
        d, p, r = row.direct, row.proxied, row.ratios()
        table.append((row.hosting,
                      _count(d.per_second), _count(p.per_second), _ratio(r.get("throughput")),
                      _ms(d.p50_ms), _ms(p.p50_ms), _ratio(r.get("p50")),
                      _ms(d.p99_ms), _ms(p.p99_ms), _ratio(r.get("p99"))))
    return lines + _grid(header, table) + _unavailable(rows) + _errors(rows)


def _streaming_section(rows: Sequence[Comparison]) -> list[str]:
    lines = ["Streaming: one stream at a time, p50 of the time to the first token and to the "
             "end of the stream (ratio = proxied / direct)"]
    header = ("hosting", "upstream", "first token ms direct", "proxied", "ratio",
              "total ms direct", "proxied", "ratio")
    table = []
    for row in rows:
        if row.direct is None or row.proxied is None:
            continue
        d, p, r = row.direct, row.proxied, row.ratios()
        table.append((row.hosting, row.upstream,
                      _ms(d.first_token_p50_ms), _ms(p.first_token_p50_ms),
                      _ratio(r.get("first_token_p50")),
                      _ms(d.p50_ms), _ms(p.p50_ms), _ratio(r.get("p50"))))
    return lines + _grid(header, table) + _unavailable(rows) + _errors(rows)


def _errors(rows: Sequence[Comparison]) -> list[str]:
    lines = []
    for row in rows:
        for name, side in (("direct", row.direct), ("proxied", row.proxied)):
            lines += _side_errors(f"{row.hosting} {name}", side)
    return lines


def _side_errors(label: str, side: Side | None) -> list[str]:
    if side is None or not side.errors:
        return []
    return [f"  ! {label}: {side.errors} failed requests, first: {side.first_error}"]


def table(report: BenchReport) -> str:
    lines = ["proxyproof bench: speed as ratios against a direct call",
             f"layout: {report.layout}", ""]
    lines += _mock_section(report)
    for row in report.mock_throughput:
        lines += _side_errors(row.mock, row.result)
    lines += ["", *_overhead_section(report.overhead), "",
              *_streaming_section(report.streaming)]
    return "\n".join(lines)


def as_json(report: BenchReport) -> str:
    return json.dumps(report.to_json(), indent=2)
