"""Request bodies read as strict JSON, the way the real servers read them, by one parser that
fails only with ``BodyError``.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``. Go's ``encoding/json`` (Ollama),
serde_json (TGI), nlohmann::json (llama.cpp) and OpenAI's API all reject them as invalid JSON, so a
body that holds one must take each mock's own not-JSON path rather than reach a handler as a float.

Hostile bodies fail here with a ``reason`` the servers' wording functions turn into their own
message, never with an exception of another type:

- ``syntax``: any JSON syntax error (the constants included);
- ``encoding``: bytes that are not UTF-8 (or the UTF-16/32 ``json`` detects);
- ``surrogate``: a ``\\ud800``-style escape without its pair;
- ``depth``: nesting deeper than ``MAX_DEPTH`` (Python's decoder and encoder recurse);
- ``number``: an integer longer than Python converts (``sys.get_int_max_str_digits``).

Go replaces invalid UTF-8 and lone surrogates with U+FFFD instead of failing: ``replace=True``.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from .base import NOT_JSON

MAX_DEPTH = 512  # well inside Python's recursion limit, for the decoder and every later encoder
_MAX_DIGITS = sys.get_int_max_str_digits() or 4300


class BodyError(json.JSONDecodeError):
    """A body that is not strict JSON: ``reason`` (see the module), ``pos``/``lineno``/``colno``
    in the decoded text, and ``msg`` as Python words it."""

    def __init__(self, reason: str, msg: str, text: str, pos: int) -> None:
        super().__init__(msg, text, pos)
        self.reason = reason


class _Constant(ValueError):
    """A NaN or Infinity literal (raised without its position; ``loads`` finds it)."""


def _reject(name: str) -> Any:
    raise _Constant(name)


_DECODER = json.JSONDecoder(parse_constant=_reject)
_STRING = r'"(?:[^"\\]|\\.)*"'  # skipped whole, so a "NaN" or a bracket inside one is text
_STRING_OR_CONSTANT = re.compile(_STRING + r"|(-?(?:NaN|Infinity))", re.DOTALL)
_STRING_OR_LONG_NUMBER = re.compile(_STRING + rf"|(-?\d{{{_MAX_DIGITS + 1},}})", re.DOTALL)
_STRING_OR_BRACKET = re.compile(_STRING + r"|([\[\]{}])", re.DOTALL)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _first(pattern: re.Pattern[str], text: str) -> int:
    return next((m.start(1) for m in pattern.finditer(text) if m.group(1)), 0)


def too_deep_at(text: str, limit: int = MAX_DEPTH) -> int | None:
    """Where nesting first goes deeper than ``limit`` (None if it never does). Iterative."""
    if text.count("[") + text.count("{") <= limit:
        return None  # the common case, decided in C
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group(1)
        if bracket in ("[", "{"):
            depth += 1
            if depth > limit:
                return match.start(1)
        elif bracket:
            depth -= 1
    return None


def _strings(value: Any) -> Any:
    """Every string of a parsed value, keys included (iterative: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())


def _replace_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate as U+FFFD, as Go decodes it (pairs were joined by
    ``json``)."""
    def fix(text: str) -> str:
        return _SURROGATE.sub("\ufffd", text)

    if isinstance(value, str):
        return fix(value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for index, element in enumerate(item):
                if isinstance(element, str):
                    item[index] = fix(element)
                else:
                    stack.append(element)
        elif isinstance(item, dict):
            pairs = [(fix(k), fix(v) if isinstance(v, str) else v) for k, v in item.items()]
            item.clear()
            item.update(pairs)
            stack.extend(v for _, v in pairs if isinstance(v, list | dict))
    return value


def loads(text: str, *, replace: bool = False) -> Any:
    """``json.loads`` that also rejects the constants, lone surrogates (unless ``replace``),
    nesting deeper than ``MAX_DEPTH`` and over-long integers: each as a ``BodyError``.

    A constant fails as ``"Expecting value"`` at the constant (at its ``-`` sign, if any): what
    Python reports for any other token that cannot start a value.
    """
    deep = too_deep_at(text)
    if deep is not None:
        raise BodyError("depth", f"Nesting deeper than {MAX_DEPTH} levels", text, deep)
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as problem:
        raise BodyError("syntax", problem.msg, text, problem.pos) from None
    except _Constant:
        position = _first(_STRING_OR_CONSTANT, text)
        raise BodyError("syntax", "Expecting value", text, position) from None
    except ValueError:  # int(): more digits than sys.get_int_max_str_digits() allows
        position = _first(_STRING_OR_LONG_NUMBER, text)
        raise BodyError("number", "Number out of range", text, position) from None
    except RecursionError:  # only if the caller's stack was already deep
        raise BodyError("depth", "Nesting too deep", text, 0) from None
    if _SURROGATE_ESCAPE.search(text) and any(_SURROGATE.search(s) for s in _strings(value)):
        if replace:
            return _replace_surrogates(value)
        position = _SURROGATE_ESCAPE.search(text)
        raise BodyError("surrogate", "Lone surrogate", text, position.start() if position else 0)
    return value


def decode_text(body: bytes, *, replace: bool = False) -> str:
    """The body as text (UTF-8/16/32 detected like ``json.loads``); ``BodyError("encoding")``
    for bytes that are not, unless ``replace``."""
    encoding = json.detect_encoding(body)
    try:
        return body.decode(encoding, "replace" if replace else "strict")
    except UnicodeDecodeError as problem:
        text = body[: problem.start].decode(encoding, "replace")
        raise BodyError("encoding", "Invalid UTF-8", text + "\ufffd", len(text)) from None


def decode(body: bytes, *, replace: bool = False) -> Any:
    """The body as strict JSON; ``BodyError`` (reason ``syntax`` when empty) otherwise."""
    return loads(decode_text(body, replace=replace), replace=replace)


def problem(body: bytes, *, replace: bool = False) -> BodyError | None:
    """Why ``body`` is not strict JSON (None if it is): for the servers' wording functions."""
    try:
        decode(body, replace=replace)
    except BodyError as error:
        return error
    return None


def parse_body(body: bytes, *, replace: bool = False) -> Any:
    """The body as JSON; ``NOT_JSON`` when it is empty or not strict JSON. Never raises."""
    if not body:
        return NOT_JSON
    try:
        return decode(body, replace=replace)
    except BodyError:
        return NOT_JSON
