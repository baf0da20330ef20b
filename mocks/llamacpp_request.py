"""How llama.cpp's ``llama-server`` reads a request, and its error bodies (shared by the native
routes and the OpenAI-compatible ``/v1/*`` ones).

nlohmann::json parses the body first: a body that is not JSON throws, and the server's exception
wrapper answers 500. Fields are then read leniently, as ``json_value`` does: a field of the wrong
type falls back to its default instead of failing the request.
"""

from __future__ import annotations

import math
from typing import Any

from . import strict_json
from .base import JsonReply

JSON_UTF8 = "application/json; charset=utf-8"
# The build the mock reproduces: commit c392e509 (2025-02-20) is build 4748 (ggml-ci's log of that
# commit: "build: 4748 (c392e5094)"); utils.hpp's build_info is "b<number>-<LLAMA_COMMIT>".
BUILD_INFO = "b4748-c392e5094"
SERVER_HEADER = {"Server": "llama.cpp"}

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 500: "server_error",
                501: "not_supported_error", 503: "unavailable_error"}


def error(status: int, message: str) -> JsonReply:
    """``format_error_response``: ``{"error": {"code", "message", "type"}}``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"code": status, "message": message, "type": kind}}
    return JsonReply(status, body, headers=dict(SERVER_HEADER), content_type=JSON_UTF8)


def not_json(body: bytes) -> JsonReply:
    """The 500 for a body that nlohmann::json cannot parse, with its parse error."""
    prefix = "[json.exception.parse_error.101] parse error at line"
    text = body.decode("utf-8", "replace")
    if not text.strip():
        return error(500, f"{prefix} 1, column 1: attempting to parse an empty input; check that "
                          "your input string or stream contains the expected characters")
    problem = strict_json.problem(body)
    if problem is None:
        return error(500, f"{prefix} 1, column 1: syntax error")
    where = f"{prefix} {problem.lineno}, column {problem.colno}: syntax error while parsing value"
    last = problem.doc[problem.pos : problem.pos + 1] or "<EOF>"
    if problem.reason == "number":
        digits = problem.doc[problem.pos :].split(",", 1)[0].split("}", 1)[0][:64]
        return error(500, f"[json.exception.out_of_range.406] number overflow parsing '{digits}'")
    if problem.reason == "encoding":
        return error(500, f"{where} - invalid string: ill-formed UTF-8 byte; last read: '{last}'")
    if problem.reason == "surrogate":
        return error(500, f"{where} - invalid string: surrogate U+D800..U+DBFF must be followed "
                          "by U+DC00..U+DFFF; last read: '\\u'")
    if problem.reason == "depth":  # nlohmann has no limit; the mock's parser has
        return error(500, f"{where} - nesting deeper than {strict_json.MAX_DEPTH} levels")
    return error(500, f"{where} - invalid literal; last read: '{last}'")


_JSON_TYPE = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
              float: "number"}


def json_type(value: Any) -> str:
    """nlohmann's name for the type of a JSON value (in its type errors)."""
    return _JSON_TYPE.get(type(value), "null")


def _finite(value: Any) -> bool:
    """A JSON number (or boolean, which nlohmann converts) that a C++ integer can hold: Python
    reads an overflowing literal such as ``1e400`` as infinity."""
    return isinstance(value, bool | int | float) and math.isfinite(value)


def integer(data: dict, key: str, default: int | None) -> int | None:
    """``json_value`` for an integer: numbers (and booleans) convert, anything else is ignored."""
    value = data.get(key)
    return int(value) if _finite(value) else default


def number(data: dict, key: str, default: Any) -> Any:
    """``json_value`` for a number of ``default``'s type (float or int)."""
    value = data.get(key)
    if not _finite(value):
        return default
    return float(value) if isinstance(default, float) else int(value)


def flag(data: dict, key: str) -> bool:
    """``json_value`` for a boolean that defaults to false: anything but a JSON bool is false."""
    value = data.get(key)
    return value if isinstance(value, bool) else False


def stop_words(data: dict) -> list[str]:
    """``stop`` only counts as a JSON array; a bare string is silently ignored."""
    stop = data.get("stop")
    if not isinstance(stop, list):
        return []
    return [word for word in stop if isinstance(word, str) and word]


def n_predict(data: dict) -> int:
    """``n_predict`` wins over ``max_completion_tokens``, which wins over ``max_tokens``."""
    fallback = integer(data, "max_completion_tokens", integer(data, "max_tokens", None))
    value = integer(data, "n_predict", fallback)
    return -1 if value is None else value
