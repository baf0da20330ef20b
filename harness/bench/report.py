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


def _mock_section(report: BenchReport) -> list[str]:
    concurrency = report.settings["concurrency"]
    lines = [f"Mock throughput: one mock process on one core, {concurrency} kept-alive connections"]
    rows = [(row.mock, row.request, _count(row.result.per_second), _count(row.result.requests),
             str(row.result.errors), f"{row.result.load_cpu:.0%}")
            for row in report.mock_throughput]
    lines += _grid(("mock", "request", "req/s", "requests", "errors", "load gen CPU"), rows,
                   text_columns=2)
    verdict = "met" if report.meets_target else "NOT met"
    lines.append(f"  target: >= {TARGET_PER_SECOND:,} req/s per mock: {verdict}")
    for row in report.mock_throughput:
        lines += _side_notes(row.mock, row.result)
    return lines


def _overhead_section(rows: Sequence[Comparison]) -> list[str]:
    lines = ["Proxy overhead: POST /llama2-chat through the proxy vs the request the proxy sends,",
             "sent to the mock directly (ratio = proxied / direct; throughput under load, "
             "latency on one connection)"]
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
    return lines + _grid(header, table) + _comparison_notes(rows)


def _streaming_section(rows: Sequence[Comparison]) -> list[str]:
    lines = ["Streaming: one stream at a time, p50 times to the first token and to the end of the",
             "stream (ratio = proxied / direct)"]
    header = ("hosting", "upstream", "1st token ms direct", "proxied", "ratio",
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
    return lines + _grid(header, table, text_columns=2) + _comparison_notes(rows)


def _comparison_notes(rows: Sequence[Comparison]) -> list[str]:
    lines = []
    for row in rows:
        if row.unavailable:
            lines.append(f"  {row.hosting}: {NA} ({row.unavailable})")
        for name, side in (("direct", row.direct), ("proxied", row.proxied)):
            lines += _side_notes(f"{row.hosting} {name}", side)
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
    lines = ["proxyproof bench: speed as ratios against a direct call",
             f"layout: {report.layout}", ""]
    lines += _mock_section(report)
    lines += ["", *_overhead_section(report.overhead), "",
              *_streaming_section(report.streaming)]
    return "\n".join(lines)


def as_json(report: BenchReport) -> str:
    return json.dumps(report.to_json(), indent=2)
