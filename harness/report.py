"""Render conformance results as a terminal table or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from .seed import CaseResult

COLUMNS = ("hosting", "format", "route", "upstream call", "client got", "result")


def _row(result: CaseResult) -> tuple[str, ...]:
    verdict = "conforms" if result.conforms else "DEVIATES"
    return (result.hosting, result.llama2_format, result.route_type, result.upstream,
            result.client, verdict)


def table(results: Sequence[CaseResult]) -> str:
    rows = [COLUMNS] + [_row(result) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for result in results:
        for deviation in result.deviations:
            lines.append(f"  ! {result.hosting} {result.route_type}: {deviation}")
        for note in result.notes:
            lines.append(f"  ~ {result.hosting} {result.route_type} (Kong quirk): {note}")
    passed = sum(result.conforms for result in results)
    lines.append(f"{passed} of {len(results)} cases conform")
    return "\n".join(lines)


def as_json(results: Sequence[CaseResult]) -> str:
    return json.dumps(
        {"cases": [asdict(result) | {"conforms": result.conforms} for result in results],
         "conforming": sum(result.conforms for result in results), "total": len(results)},
        indent=2,
    )
