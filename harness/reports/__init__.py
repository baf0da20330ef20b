"""Report writers: JSON for tools, JUnit XML for CI servers, Markdown for people, and the live
terminal view. Every writer masks credentials again before writing (``masking.py``)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..results import Report
from .json_report import write_json
from .junit import write_junit
from .markdown import write_markdown
from .masking import mask_headers
from .terminal import LiveProgress, make_console, print_summary

Writer = Callable[[Report, TextIO], None]
WRITERS: dict[str, Writer] = {"json": write_json, "junit": write_junit, "markdown": write_markdown}

__all__ = [
    "WRITERS", "LiveProgress", "finish", "make_console", "mask_headers", "print_summary",
    "write_json", "write_junit", "write_markdown", "write_report_file",
]  # fmt: skip


def finish(report: Report, console: Any, args: Any) -> int:
    """Print ``report``'s summary, write the files ``args.json``, ``args.junit`` and
    ``args.markdown`` name, and give the exit status: 1 when a case failed, else 0.
    ``ValueError`` for a path that cannot be written."""
    print_summary(report, console)
    for kind in ("json", "junit", "markdown"):
        target = getattr(args, kind)
        if target:
            write_report_file(kind, target, report)
    return 1 if report.failed else 0


def write_report_file(kind: str, path_or_dash: str | os.PathLike[str], report: Report) -> None:
    """Write ``report`` as ``kind`` (json, junit, markdown) to a file, or to standard output for
    ``-``. ``ValueError`` for an unknown kind or a path that cannot be written."""
    try:
        writer = WRITERS[kind]
    except KeyError:
        raise ValueError(
            f"unknown report kind {kind!r}: expected one of {', '.join(WRITERS)}"
        ) from None
    if str(path_or_dash) == "-":
        writer(report, sys.stdout)  # looked up now, so a redirected stdout is honoured
        sys.stdout.flush()
        return
    path = Path(path_or_dash)
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    # Written beside the target then renamed over it: a reader (a CI step, a watcher) never sees
    # half a report, and a failed run leaves the previous report in place.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as stream:
            writer(report, stream)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
