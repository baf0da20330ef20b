"""Which cassette answers a request, and how the closest one differs when none does. Pure.

A cassette matches when the method, the path and the JSON body are the same, leaving out the
ignored fields (``--ignore-field``) on both sides. Headers and the query string are not compared
(they carry credentials and client noise). A body value recorded as ``***`` (a redacted secret)
matches any value. A body that is not JSON is compared as text. JSON values compare as JSON does:
``1`` equals ``1.0``, ``true`` is not ``1``, key order does not count.

With several matching cassettes the first by file name wins. When none matches, ``closest``
ranks the cassettes by how far they are (method, then path, then the number of differing body
fields) and lists the differences of the nearest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import field_path
from .base import NOT_JSON
from .cassette import Cassette
from .redaction import MASK

ABSENT = "<absent>"  # how a missing field or body shows in a difference
_SHOWN = 200  # characters of a value a difference shows


@dataclass(frozen=True)
class Received:
    """What is compared of a received request."""

    method: str
    path: str
    json: Any  # NOT_JSON when the body is empty or not JSON
    text: str  # the body as text


@dataclass(frozen=True)
class Difference:
    field: str  # "method", "path", "body" or "body.<dotted path>"
    expected: Any  # as recorded
    got: Any  # as received

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "expected": _shown(self.expected), "got": _shown(self.got)}

    def describe(self) -> str:
        return (f"{self.field}: expected {_short(self.expected)}, got {_short(self.got)}")


@dataclass(frozen=True)
class Miss:
    closest: Cassette | None
    differences: tuple[Difference, ...]


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _SHOWN:
        return value[:_SHOWN] + "..."
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return value if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return value


def _short(value: Any) -> str:
    text = value if value == ABSENT else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _same_scalar(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    return expected == got


def body_differences(expected: Any, got: Any, where: str = "body") -> list[Difference]:
    """Where two JSON values differ, as dotted paths; a recorded ``***`` matches anything."""
    if expected == MASK:
        return []
    if isinstance(expected, dict) and isinstance(got, dict):
        found = []
        for key in [*expected, *(k for k in got if k not in expected)]:
            place = f"{where}.{key}"
            if key not in got:
                found.append(Difference(place, expected[key], ABSENT))
            elif key not in expected:
                found.append(Difference(place, ABSENT, got[key]))
            else:
                found.extend(body_differences(expected[key], got[key], place))
        return found
    if isinstance(expected, list) and isinstance(got, list):
        found = []
        for index in range(max(len(expected), len(got))):
            place = f"{where}.{index}"
            if index >= len(got):
                found.append(Difference(place, expected[index], ABSENT))
            elif index >= len(expected):
                found.append(Difference(place, ABSENT, got[index]))
            else:
                found.extend(body_differences(expected[index], got[index], place))
        return found
    if isinstance(expected, dict | list) or isinstance(got, dict | list):
        return [Difference(where, expected, got)]
    return [] if _same_scalar(expected, got) else [Difference(where, expected, got)]


def differences(cassette: Cassette, received: Received,
                ignored: Sequence[tuple[str, ...]] = ()) -> list[Difference]:
    """How ``received`` differs from ``cassette``'s request (empty: it matches)."""
    recorded = cassette.request
    found = []
    if recorded.method != received.method:
        found.append(Difference("method", recorded.method, received.method))
    if recorded.path != received.path:
        found.append(Difference("path", recorded.path, received.path))
    if recorded.json is not NOT_JSON and received.json is not NOT_JSON:
        found.extend(body_differences(field_path.without(recorded.json, ignored),
                                      field_path.without(received.json, ignored)))
    elif recorded.json is not NOT_JSON:
        found.append(Difference("body", recorded.json, received.text or ABSENT))
    elif received.json is not NOT_JSON:
        found.append(Difference("body", recorded.text or ABSENT, received.json))
    elif recorded.text != received.text:
        found.append(Difference("body", recorded.text or ABSENT, received.text or ABSENT))
    return found


def _distance(found: Iterable[Difference]) -> tuple[int, int, int]:
    fields = [difference.field for difference in found]
    return ("method" in fields, "path" in fields, len(fields))


def find(cassettes: Sequence[Cassette], received: Received,
         ignored: Sequence[tuple[str, ...]] = ()) -> Cassette | Miss:
    """The first cassette that matches ``received``, or the closest one and its differences."""
    best: tuple[tuple[int, int, int], Cassette, list[Difference]] | None = None
    for cassette in cassettes:
        found = differences(cassette, received, ignored)
        if not found:
            return cassette
        distance = _distance(found)
        if best is None or distance < best[0]:
            best = (distance, cassette, found)
    if best is None:
        return Miss(None, ())
    return Miss(best[1], tuple(best[2]))


def miss_message(received: Received, miss: Miss) -> str:
    """One line: the request, the closest cassette and how it differs."""
    head = f"no cassette matches {received.method} {received.path}"
    if miss.closest is None:
        return head + " (no cassettes are loaded)"
    shown = "; ".join(d.describe() for d in miss.differences[:3])
    more = len(miss.differences) - 3
    tail = f" and {more} more" if more > 0 else ""
    return f"{head}; the closest is {miss.closest.name or '(unnamed)'}: {shown}{tail}"
