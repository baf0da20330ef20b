"""Request bodies read as strict JSON, the way the real servers read them.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``. Go's ``encoding/json`` (Ollama),
serde_json (TGI), nlohmann::json (llama.cpp) and OpenAI's API all reject them as invalid JSON, so a
body that holds one must take each mock's own not-JSON path rather than reach a handler as a float.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import NOT_JSON


class _Constant(ValueError):
    """A NaN or Infinity literal (raised without its position; ``loads`` finds it)."""


def _reject(name: str) -> Any:
    raise _Constant(name)


_DECODER = json.JSONDecoder(parse_constant=_reject)
# A string (skipped whole, so a "NaN" inside one is text) or a constant with its optional sign.
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?(?:NaN|Infinity))', re.DOTALL)


def loads(text: str) -> Any:
    """``json.loads`` that also rejects the constants.

    A constant raises ``json.JSONDecodeError("Expecting value", ...)`` at the constant (at its
    ``-`` sign, if any): what Python reports for any other token that cannot start a value, so the
    mocks' servers word it as they word every other syntax error.
    """
    try:
        return _DECODER.decode(text)
    except _Constant:
        found = next(m for m in _STRING_OR_CONSTANT.finditer(text) if m.group(1))
        raise json.JSONDecodeError("Expecting value", text, found.start()) from None


def parse_body(body: bytes) -> Any:
    """The body as JSON (detecting UTF-8/16/32 like ``json.loads``); ``NOT_JSON`` when it is
    empty or not strict JSON."""
    if not body:
        return NOT_JSON
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, _Constant
        return NOT_JSON
