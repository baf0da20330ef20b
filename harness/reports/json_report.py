"""The JSON report: the interface users' CI reads, so exactly ``Report.as_dict()`` (masked)."""

from __future__ import annotations

import json
from typing import TextIO

from ..results import Report
from .masking import mask_report


def write_json(report: Report, stream: TextIO) -> None:
    """``{"gateway": {...}, "cases": [...], "summary": {"pass": N, ...}}``, indented."""
    # default=str: a stray non-JSON value in a result must not cost the whole report.
    json.dump(mask_report(report).as_dict(), stream, indent=2, ensure_ascii=False, default=str)
    stream.write("\n")
