"""How llama.cpp's ``llama-server`` reads a request, and its error bodies (shared by the native
routes and the OpenAI-compatible ``/v1/*`` ones).

nlohmann::json parses the body first: a body that is not JSON throws, and the server's exception
handler answers 500 with the exception's text (``body_json``, ``not_json``). Fields are then read
leniently, as ``json_value`` does: a field of the wrong type falls back to its default instead
of failing the request.
"""

from __future__ import annotations

import json
import math
from typing import Any

from . import nlohmann_errors, strict_json
from .base import NOT_JSON, JsonReply

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
    """The 500 for a body that ``json::parse`` rejects: httplib's exception handler answers with
    ``e.what()`` (``nlohmann_errors``), and ``safe_json_to_str`` writes each ill-formed UTF-8
    sequence it quotes as U+FFFD."""
    what = nlohmann_errors.check(body).error
    if what is None:  # nlohmann reads it; only the mock's own depth limit refused it
        return error(500, f"proxyproof mock: JSON nested deeper than {strict_json.MAX_DEPTH} "
                          "levels is beyond the mock (llama.cpp would read it)")
    return error(500, what.decode("utf-8", "replace"))


def body_json(body: bytes, parsed: Any) -> Any:
    """The body as llama.cpp's ``json::parse`` reads it, given the mock's strict parse of it.

    They differ in three ways: nlohmann rejects a number whose double is not finite (``1e400``,
    a 400-digit integer), which Python reads; it reads only UTF-8, where Python also detects
    UTF-16 and UTF-32; and a NUL byte outside a string ends its input, so what precedes one is
    the body. NOT_JSON where nlohmann throws (``not_json`` then words it).
    """
    if parsed is NOT_JSON:
        if b"\0" not in body:
            return NOT_JSON
        verdict = nlohmann_errors.check(body)
        if verdict.error is None and verdict.end < len(body):
            return strict_json.parse_body(body[: verdict.end])
        return NOT_JSON
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig") or not _doubles(parsed):
        return NOT_JSON
    return parsed


def _doubles(value: Any) -> bool:
    """Every number in ``value`` is a finite double (nlohmann reads an integer beyond 64 bits as
    one, and throws out_of_range.406 for a number no double holds). Iterative."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**64:
            try:
                float(item)
            except OverflowError:
                return False
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return True


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
