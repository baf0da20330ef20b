"""proxyproof's JSON summary of a load run, and whether the run passed.

The shape is fixed (scripts read it)::

    {"requests": N, "workers": K,
     "by_kind": {KIND: {"requests", "rps", "p50_ms", "p99_ms", "ttft_p50_ms"}},
     "outcomes": {"ok", "expected_error", "unexpected_5xx", "stream_cut"},
     "samples_checked": N, "samples_failed": N}

``workers`` counts the processes that generated load (1 for a run without ``--master``);
``ttft_p50_ms`` is null for a kind that does not stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .outcomes import OUTCOMES, STREAM_CUT, UNEXPECTED_5XX

_COUNT = {"type": "integer", "minimum": 0}
_FIGURE = {"type": "number", "minimum": 0}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["requests", "workers", "by_kind", "outcomes", "samples_checked",
                 "samples_failed"],
    "properties": {
        "requests": _COUNT,
        "workers": _COUNT,
        "by_kind": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["requests", "rps", "p50_ms", "p99_ms", "ttft_p50_ms"],
                "properties": {
                    "requests": _COUNT, "rps": _FIGURE, "p50_ms": _FIGURE, "p99_ms": _FIGURE,
                    "ttft_p50_ms": {"anyOf": [_FIGURE, {"type": "null"}]},
                },
            },
        },
        "outcomes": {
            "type": "object",
            "additionalProperties": False,
            "required": list(OUTCOMES),
            "properties": {name: _COUNT for name in OUTCOMES},
        },
        "samples_checked": _COUNT,
        "samples_failed": _COUNT,
    },
}


@dataclass(frozen=True)
class KindFigures:
    requests: int
    p50_ms: float
    p99_ms: float
    ttft_p50_ms: float | None


def summary(by_kind: Mapping[str, KindFigures], seconds: float, workers: int,
            outcomes: Mapping[str, int], checked: int, failed: int) -> dict[str, Any]:
    """The summary of a run that sent for ``seconds``."""
    return {
        "requests": sum(f.requests for f in by_kind.values()),
        "workers": workers,
        "by_kind": {kind: {"requests": f.requests,
                           "rps": round(f.requests / seconds, 2) if seconds > 0 else 0.0,
                           "p50_ms": f.p50_ms, "p99_ms": f.p99_ms,
                           "ttft_p50_ms": f.ttft_p50_ms}
                    for kind, f in sorted(by_kind.items())},
        "outcomes": {name: int(outcomes.get(name, 0)) for name in OUTCOMES},
        "samples_checked": checked,
        "samples_failed": failed,
    }


def verdict(report: Mapping[str, Any], fail_ratio: float) -> list[str]:
    """Why the run failed (empty when it passed): unexpected 5xx and cut streams above
    ``fail_ratio`` of the requests, failed samples above it of the samples checked, or no
    request at all."""
    reasons = []
    requests = report["requests"]
    if not requests:
        return ["no request was answered or sent"]
    bad = report["outcomes"][UNEXPECTED_5XX] + report["outcomes"][STREAM_CUT]
    if bad > fail_ratio * requests:
        reasons.append(f"{bad} of {requests} requests got an unexpected 5xx or were cut "
                       f"(more than {fail_ratio:g} of them)")
    checked, failed = report["samples_checked"], report["samples_failed"]
    if failed > fail_ratio * checked:
        reasons.append(f"{failed} of {checked} sampled replies failed the oracle's check "
                       f"(more than {fail_ratio:g} of them)")
    return reasons
