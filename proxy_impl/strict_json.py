"""A client's JSON read strictly: what Python's ``json`` would take but the proxy must not pass on
(docs/security.md#request-bodies).

Each of these would otherwise surface later as a 500 or reach the upstream as something it
cannot read: text that is not UTF-8, a lone surrogate (``"\\ud800"``: valid JSON escapes, not
text), ``NaN``/``Infinity`` (not JSON), a number too long or too large for a double, nesting
deeper than the proxy's own code should walk, and a key given twice (which value counts is
parser-dependent). ``load`` is pure: it returns the value or raises ``Refused``.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 128  # arrays and objects inside one another; real requests stay under ten
MAX_NUMBER_DIGITS = 100  # int() of long digit strings is slow and no option needs them


class Refused(ValueError):
    """The body is JSON Python reads, but not one the proxy accepts; the message says why."""


class NotJson(ValueError):
    """The body is not JSON at all (Kong's "no body")."""


def load(text: bytes, *, duplicate_keys_last_wins: bool = False) -> Any:
    """The JSON value of ``text`` (UTF-8 bytes); raises ``Refused`` or ``NotJson``."""
    try:
        decoded = text.decode("utf-8")  # strict: invalid bytes and encoded surrogates fail
    except UnicodeDecodeError:
        raise Refused("request body is not valid UTF-8") from None

    decoder = _LAST_KEY_WINS if duplicate_keys_last_wins else _NO_REPEATED_KEYS
    try:
        value = decoder.decode(decoded.removeprefix("\ufeff"))
    except RecursionError:
        raise Refused(_too_deep()) from None
    except Refused:
        raise
    except ValueError as error:
        raise NotJson(str(error)) from None
    if _may_hide_anything(text):
        _check_tree(value)
    return value


def _may_hide_anything(text: bytes) -> bool:
    """Whether the walk over the value can find anything: not in ASCII text without ``\\u``
    escapes (no lone surrogate can come out of it) and with fewer brackets than the depth limit
    (the usual request; two scans in C instead of a walk in Python)."""
    if not text.isascii() or b"\\u" in text:
        return True
    return text.count(b"[") + text.count(b"{") > MAX_DEPTH


def _unrepeated(items: list[tuple[str, Any]]) -> dict[str, Any]:
    table = dict(items)
    if len(table) != len(items):
        seen: set[str] = set()
        repeated = next(key for key, _ in items if key in seen or seen.add(key))
        raise Refused(f"request body repeats the key {_shown(repeated)} in one object")
    return table


def _constant(name: str) -> Any:
    raise Refused(f"request body holds {name}, which is not a JSON number")


def _integer(digits: str) -> int:
    if len(digits) > MAX_NUMBER_DIGITS:
        raise Refused(f"request body holds a number longer than {MAX_NUMBER_DIGITS} digits")
    return int(digits)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise Refused(f"request body holds a number longer than {MAX_NUMBER_DIGITS} digits")
    value = float(text)
    if not math.isfinite(value):  # 1e999: valid JSON, but no double holds it
        raise Refused("request body holds a number too large for a double")
    return value


# Built once (``json.loads`` with hooks builds a decoder per call).
_NO_REPEATED_KEYS = json.JSONDecoder(parse_constant=_constant, parse_int=_integer,
                                     parse_float=_float, object_pairs_hook=_unrepeated)
_LAST_KEY_WINS = json.JSONDecoder(parse_constant=_constant, parse_int=_integer,
                                  parse_float=_float)


def _check_tree(value: Any) -> None:
    """Depth and text of every string, walked without recursion (a deep body must not make the
    check itself fail)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Refused(_too_deep())
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str):
                    _check_text(key)
                stack.append((child, depth + 1))


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused("request body holds a lone surrogate (\\ud800-\\udfff), not text") from None


def _too_deep() -> str:
    return f"request body nests arrays and objects deeper than {MAX_DEPTH} levels"


def _shown(key: str) -> str:
    """A key as a message may quote it: short, and printable."""
    shown = key if len(key) <= 40 else key[:40] + "…"
    return json.dumps(shown)
