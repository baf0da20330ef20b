"""The Markdown report, for a README or a pull request (rendered the GitHub way).

Free text from results (titles, details) is escaped: llama2 prompts are full of ``<s>`` and
``[INST]``, which Markdown would otherwise render as strikethrough or links."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, TextIO

from ..results import CaseResult, Report
from .masking import mask_report
from .tally import counts_line, hosting_of, matrix, named_deviations

_ICONS = (("pass", "✅"), ("fail", "❌"), ("deviation", "⚠️"), ("n/a", "n/a"))
_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|#~&])")


def write_markdown(report: Report, stream: TextIO) -> None:
    report = mask_report(report)
    stream.write("\n".join(_document(report)).rstrip("\n") + "\n")


def _document(report: Report) -> list[str]:
    gateway = report.gateway
    lines = [f"# proxyproof conformance: {_text(str(gateway.get('name') or 'gateway'))}", ""]
    others = [f"{_text(key)}: `{_code(value)}`" for key, value in gateway.items() if key != "name"]
    if others:
        lines += [" · ".join(others), ""]
    verdict = "❌ failed" if report.failed else "✅ conforms"
    lines += [f"**{verdict}**: {counts_line(report.summary)}", ""]
    lines += _matrix(report)
    failures = [case for case in report.cases if case.outcome == "fail"]
    if failures:
        lines += ["## Failures", ""]
        for case in failures:
            lines += _failure(case)
    deviations = named_deviations(report.cases)
    if deviations:
        lines += ["## Deviations", "", "Named Kong deviations, with the cases that show them:", ""]
        for name, cases in deviations.items():
            ids = ", ".join(f"`{_code(case.id)}` ({_text(hosting_of(case))})" for case in cases)
            lines.append(f"- **{_text(name)}**: {ids}")
        lines.append("")
    return lines


def _matrix(report: Report) -> list[str]:
    table = matrix(report.cases)
    if not table.features:
        return ["_No cases ran._", ""]
    # _text escapes "|" (and the rest), so a feature or hosting name cannot split a cell.
    lines = [
        "## Matrix", "",
        "| Feature | " + " | ".join(_text(h) for h in table.hostings) + " |",
        "|---|" + "---|" * len(table.hostings),
    ]  # fmt: skip
    for feature in table.features:
        cells = [_counts(table.cell(feature, hosting)) for hosting in table.hostings]
        lines.append(f"| {_text(feature)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _counts(counts: Counter[str]) -> str:
    parts = [f"{counts[outcome]} {icon}" for outcome, icon in _ICONS if counts[outcome]]
    return " · ".join(parts) or "—"


def _failure(case: CaseResult) -> list[str]:
    where = [f"hosting {_text(hosting_of(case))}"]
    if case.route:
        where.append(f"route `{_code(case.route)}`")
    if case.features:
        where.append("features " + ", ".join(f"`{_code(f)}`" for f in case.features))
    lines = [f"### `{_code(case.id)}`: {_text(case.title)}", "", " · ".join(where), ""]
    lines += [f"- {_text(detail)}" for detail in case.details]
    # An HTML table is the one way GitHub puts two fenced blocks side by side; the blank lines
    # around each block are what makes GitHub render Markdown inside the cells.
    lines += [
        "", "<table><tr><th>Expected</th><th>Actual</th></tr><tr><td>", "",
        *_fenced(case.expected), "", "</td><td>", "", *_fenced(case.actual), "",
        "</td></tr></table>", "",
    ]  # fmt: skip
    if case.journal:
        lines += [
            "<details><summary>Mock journal: what the upstream received</summary>", "",
            *_fenced(case.journal), "", "</details>", "",
        ]  # fmt: skip
    return lines


def _fenced(value: Any) -> list[str]:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    # A fence longer than any backtick run inside, so a body full of backticks cannot close it.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}json", text, fence]


def _text(text: str) -> str:
    """Plain text on one line, rendered as written."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))


def _code(value: Any) -> str:
    """Inline code content: a backtick is the one character that would end it."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return " ".join(text.split()).replace("`", "'")
