"""A second net for credentials before any report is written.

Results come masked from upstream (``results.py``), but a report leaves the machine: it is
uploaded by CI, pasted into pull requests. So every writer masks again, and a bug upstream does not
turn into a leaked API key. Both passes are pure: they return copies and never touch the input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any, TypeVar

from ..results import CaseResult, Report

MASK = "***"
# Compared lowercased with "_" as "-": some clients (and some journals) spell names either way.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)
# "Bearer sk-..." keeps its scheme: which kind of credential went upstream is worth seeing.
_SCHEMED_HEADERS = frozenset({"authorization", "proxy-authorization"})

# The same names written into free text: a detail such as `upstream got Authorization: Bearer x`
# or a JSON dump held as a string. Only `name: value` / `name=value` forms: a bare mention of a
# header ("the Authorization header was dropped") says nothing secret.
_IN_TEXT = re.compile(
    r"(?P<name>\b(?:proxy-authorization|authorization|x[-_]api[-_]key|api[-_]key"
    r"|set-cookie|cookie))"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:bearer|basic|digest|token)\s+)?"
    r"(?P<secret>[^\s\"',;}\]]+(?:;\s*[^\s\"',;}\]]+)*)",
    re.IGNORECASE,
)

T = TypeVar("T")


def mask_headers(obj: T) -> T:
    """A deep copy of ``obj`` whose ``headers`` mappings have their credentials replaced by
    ``***`` (``Bearer ***`` for an ``Authorization`` with a scheme).

    A headers mapping is the value of any key ending in ``headers`` (``headers``,
    ``response_headers``, ...): a dict of name to value (or list of values), or a list of
    ``(name, value)`` pairs."""
    if isinstance(obj, Mapping):
        return {  # type: ignore[return-value]
            key: _mask_header_block(value) if _names_headers(key) else mask_headers(value)
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [mask_headers(item) for item in obj]  # type: ignore[return-value]
    if isinstance(obj, tuple):
        return tuple(mask_headers(item) for item in obj)  # type: ignore[return-value]
    return obj


def mask_text(text: str) -> str:
    """``text`` with the values of credential headers written inline replaced by ``***``."""

    def hide(match: re.Match[str]) -> str:
        return match["name"] + match["sep"] + (match["scheme"] or "") + MASK

    return _IN_TEXT.sub(hide, text)


def mask(obj: T) -> T:
    """Both passes: headers mappings by name, then every string for inline credentials."""
    return _mask_strings(mask_headers(obj))


def mask_case(case: CaseResult) -> CaseResult:
    return replace(case, **{f.name: mask(getattr(case, f.name)) for f in fields(case)})


def mask_report(report: Report) -> Report:
    return Report(gateway=mask(report.gateway), cases=[mask_case(case) for case in report.cases])


def _names_headers(key: object) -> bool:
    return isinstance(key, str) and key.lower().endswith("headers")


def _is_sensitive(name: object) -> bool:
    return isinstance(name, str) and name.lower().replace("_", "-") in SENSITIVE_HEADERS


def _mask_header_block(headers: Any) -> Any:
    if isinstance(headers, Mapping):
        return {
            name: _mask_value(name, value) if _is_sensitive(name) else mask_headers(value)
            for name, value in headers.items()
        }
    if isinstance(headers, list | tuple) and all(_is_pair(item) for item in headers):
        pairs = [
            type(item)((item[0], _mask_value(item[0], item[1]))) if _is_sensitive(item[0]) else item
            for item in headers
        ]
        return type(headers)(pairs)
    return mask_headers(headers)


def _is_pair(item: object) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)


def _mask_value(name: str, value: Any) -> Any:
    if value is None or value == "":
        return value  # nothing to hide, and "absent" is worth keeping visible
    if isinstance(value, list | tuple):
        return type(value)(_mask_value(name, item) for item in value)
    if isinstance(value, str) and name.lower() in _SCHEMED_HEADERS:
        scheme, _, credential = value.strip().partition(" ")
        if credential.strip():
            return f"{scheme} {MASK}"
    return MASK


def _mask_strings(obj: Any) -> Any:
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, Mapping):
        return {key: _mask_strings(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_mask_strings(item) for item in obj)
    return obj
