"""The terminal view: a live progress bar while cases run, then the matrix and the failures.

Everything from a result goes to rich as ``Text`` or ``JSON``, never as markup: llama2 prompts
hold ``[INST]`` and ``[/INST]``, which rich would read as style tags.
"""

from __future__ import annotations

import sys
from collections import Counter
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.json import JSON
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ..results import OUTCOMES, CaseResult, Report
from .masking import mask_case, mask_report
from .tally import hosting_of, matrix, named_deviations

STYLES = {"pass": "green", "fail": "bold red", "deviation": "yellow", "n/a": "dim"}
# Wide enough for the matrix and two JSON columns side by side; rich's own default for a
# non-terminal is 80 columns, which folds every failure in CI logs.
PLAIN_WIDTH = 120


def make_console(stream: TextIO | None = None, width: int | None = None) -> Console:
    """A console on ``stream`` (standard output by default); a fixed width unless a terminal."""
    stream = stream if stream is not None else sys.stdout
    if width is None and not _isatty(stream):
        width = PLAIN_WIDTH
    return Console(file=stream, width=width)


def counts_text(counts: Counter[str] | dict[str, int], *, skip_zero: bool = False) -> Text:
    """``12 pass · 1 fail · ...`` with each count in its outcome's colour."""
    text = Text()
    for outcome in OUTCOMES:
        count = counts.get(outcome, 0)
        if skip_zero and not count:
            continue
        if text:
            text.append(" · ")
        text.append(f"{count} {outcome}", style=STYLES[outcome] if count else "dim")
    return text


class LiveProgress:
    """Progress of a run: a bar with counts on a terminal, one line per case anywhere else.

    ``with LiveProgress(total=len(cases)) as progress:`` then ``progress.case_started(id, title)``
    and ``progress.case_finished(result)`` as cases run. ``counts`` holds the outcomes so far."""

    def __init__(self, total: int | None = None, console: Console | None = None) -> None:
        self.console = console if console is not None else make_console()
        self.total = total
        self.counts: Counter[str] = Counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> LiveProgress:
        # CI logs and pytest's captured output are no terminals: a redrawn bar would be noise.
        if self.console.is_terminal:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total, counts="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def case_started(self, case_id: str, title: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{case_id}: {title}")

    def case_finished(self, result: CaseResult) -> None:
        result = mask_case(result)
        self.counts[result.outcome] += 1
        if self._progress is None or self._task is None:
            # soft_wrap: one line per case however long, so logs stay greppable.
            self.console.print(self._line(result), soft_wrap=True)
            return
        counts = counts_text(self.counts, skip_zero=True).markup
        self._progress.update(self._task, advance=1, counts=counts)
        if result.outcome == "fail":  # above the bar, at once: no waiting for the summary
            self._progress.console.print(self._line(result))

    @staticmethod
    def _line(result: CaseResult) -> Text:
        line = Text(f"{result.outcome.upper():<9} ", style=STYLES[result.outcome])
        line.append(f"{result.id} [{hosting_of(result)}] {result.title}")
        if result.outcome != "pass" and result.details:
            line.append(f": {result.details[0]}", style="dim")
        line.append(f" ({result.seconds:.2f}s)", style="dim")
        return line


def print_summary(report: Report, console: Console | None = None) -> None:
    """The feature × hosting matrix, each failure (expected against actual, and what the mock
    received), the named deviations, and the closing counts."""
    console = console if console is not None else make_console()
    report = mask_report(report)
    console.print(_matrix_table(report))
    for case in report.cases:
        if case.outcome == "fail":
            _print_failure(case, console)
    deviations = named_deviations(report.cases)
    if deviations:
        console.print()
        console.print(Text("Named Kong deviations", style="bold yellow"))
        for name, cases in deviations.items():
            line = Text("  ⚠ ", style="yellow").append(name)
            line.append(f"  ({len(cases)}: {', '.join(case.id for case in cases)})", style="dim")
            console.print(line)
    console.print()
    console.print(counts_text(report.summary))


def _matrix_table(report: Report) -> Table:
    grid = matrix(report.cases)
    gateway = str(report.gateway.get("name") or "gateway")
    table = Table(title=Text(f"proxyproof conformance: {gateway}"), title_justify="left")
    table.add_column("feature", style="bold")
    for hosting in grid.hostings:
        table.add_column(hosting)
    for feature in grid.features:
        cells = [counts_text(grid.cell(feature, h), skip_zero=True) for h in grid.hostings]
        table.add_row(Text(feature), *(cell if cell else Text("—", style="dim") for cell in cells))
    return table


def _print_failure(case: CaseResult, console: Console) -> None:
    console.print()
    console.rule(Text(f"FAIL {case.id}", style=STYLES["fail"]), align="left")
    where = f"{case.title}  [{hosting_of(case)}"
    where += f", route {case.route}]" if case.route else "]"
    console.print(Text(where))
    for detail in case.details:
        console.print(Text("  • ").append(detail, style="red"))
    sides = Table(expand=True, show_lines=False)
    sides.add_column("expected", ratio=1)
    sides.add_column("actual", ratio=1)
    sides.add_row(_json(case.expected), _json(case.actual))
    console.print(sides)
    journal = _json(case.journal) if case.journal else Text("(the mock received nothing)")
    console.print(Panel(journal, title="mock journal", title_align="left"))


def _json(value: object) -> JSON:
    return JSON.from_data(value, indent=2, default=str)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
