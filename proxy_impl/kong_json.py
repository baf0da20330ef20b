"""JSON text as Kong writes it: OpenResty's lua-cjson, configured as Kong configures it
(docs/kong-behaviour.md#json-encoding). Used in Kong-compatibility mode only
(``Behaviour.cjson_encoding``); the fixed proxy writes ``json_text.compact_json``.

What a Python value becomes, rule by rule, with the source of each:

- **Strings** (``lua_cjson.c``, ``char2escape``): ``"`` and ``\\`` escaped, **``/`` written
  ``\\/``**, ``\\b \\t \\n \\f \\r`` by name, every other byte below 0x20 and DEL (0x7f) as
  ``\\u00XX`` (lower-case hex); everything else, UTF-8 included, passes through as bytes.
- **Numbers** (``json_append_number`` → ``fpconv_g_fmt``): every Lua number is a double printed
  with ``%.16g`` — Kong raises cjson's default precision (14) to ``CJSON_MAX_PRECISION`` = 16 at
  start (``kong/globalpatches.lua``, ``kong/tools/cjson.lua``). So ``0.30000000000000004`` is
  ``0.3``, ``1.0`` is ``1``, ``1e21`` is ``1e+21``. An integer token the decoder read goes through
  C's ``strtoll`` first (OpenResty's ``json_next_number_token``), which saturates: anything
  beyond the int64 range is ``±9223372036854775807``, printed ``9.223372036854776e+18``.
  NaN and ±Infinity cannot be encoded: ``Cannot serialise number: must not be NaN or Infinity``.
- **Tables**: ``true``/``false``/``null`` (``cjson.null``) as such; a non-empty array as
  ``[...]``; an *empty* table is ``{}`` (``encode_empty_table_as_object`` is on by default)
  unless it carries cjson's array metatable. Kong decodes a client body with
  ``decode_array_with_array_mt(true)`` (``kong.request.get_body`` → ``kong.tools.cjson``), so a
  client's ``[]`` stays ``[]``; the drivers decode an upstream reply with plain ``cjson.safe``,
  so an upstream ``[]`` copied into a reply comes out ``{}`` (``empty_array_as_object``).
- **Objects**: ``{"k":v,...}`` without spaces, keys escaped as strings. Kong's key order is the
  Lua table's (randomised per process by LuaJIT): this encoder keeps insertion order, and a
  comparison with Kong must ignore key order.
- A Lua ``nil`` is no key at all: callers leave such keys out (this encoder writes ``None`` as
  ``null``, which is what ``cjson.null`` is).
- Nesting deeper than 1000 (``DEFAULT_ENCODE_MAX_DEPTH``): ``Cannot serialise, excessive
  nesting (1001)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
NUMBER_PRECISION = 16  # kong.constants.CJSON_MAX_PRECISION
MAX_DEPTH = 1000  # lua-cjson's DEFAULT_ENCODE_MAX_DEPTH
NOT_FINITE = "Cannot serialise number: must not be NaN or Infinity"

_ESCAPES: dict[int, bytes] = {byte: b"\\u%04x" % byte for byte in range(0x20)}
_ESCAPES.update({
    0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r",
    0x22: b'\\"', 0x2F: b"\\/", 0x5C: b"\\\\", 0x7F: b"\\u007f",
})  # fmt: skip
_TABLE = {byte: escape.decode("ascii") for byte, escape in _ESCAPES.items()}


class CannotEncode(ValueError):
    """cjson refuses the value; ``str(error)`` is cjson's own message."""


def encode(value: Any, *, empty_array_as_object: bool = False) -> bytes:
    """``value`` as Kong's ``cjson.encode`` writes it (see the module's rules); raises
    ``CannotEncode`` where cjson fails. Walks without recursion: depth is cjson's limit, not
    Python's."""
    out: list[str] = []
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, Mapping | list | tuple):
            depth += 1
            if depth > MAX_DEPTH:
                raise CannotEncode(f"Cannot serialise, excessive nesting ({depth})")
            stack.extend(reversed(_table_parts(item, depth, empty_array_as_object)))
        else:
            out.append(_scalar(item))
    return "".join(out).encode("utf-8", "surrogatepass")


class _Text(str):
    """Text already encoded, waiting on the stack between a table's values."""


def encode_string(text: str) -> str:
    """A JSON string literal with cjson's escapes (``/`` as ``\\/``)."""
    return '"' + text.translate(_TABLE) + '"'


def format_number(number: float | int) -> str:
    """A Lua number as cjson prints it: the double, ``%.16g``; an integer the decoder read
    saturates at the int64 range first (``strtoll``)."""
    if isinstance(number, int):
        number = float(min(max(number, INT64_MIN), INT64_MAX))
    if math.isnan(number) or math.isinf(number):
        raise CannotEncode(NOT_FINITE)
    return f"{number:.{NUMBER_PRECISION}g}"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return encode_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return format_number(value)
    raise CannotEncode(f"Cannot serialise {type(value).__name__}: type not supported")


def _table_parts(value: Any, depth: int, empty_array_as_object: bool) -> list[tuple[Any, int]]:
    """A table's pieces in order, each ``(value, depth)``: its values, and ``_Text`` between."""
    if isinstance(value, Mapping):
        if not value:
            return [(_Text("{}"), depth)]
        parts: list[tuple[Any, int]] = []
        for index, (key, item) in enumerate(value.items()):
            parts.append((_Text(("," if index else "{") + _key(key) + ":"), depth))
            parts.append((item, depth))
        return [*parts, (_Text("}"), depth)]
    if not value:
        return [(_Text("{}" if empty_array_as_object else "[]"), depth)]
    parts = []
    for index, item in enumerate(value):
        parts.append((_Text("," if index else "["), depth))
        parts.append((item, depth))
    return [*parts, (_Text("]"), depth)]


def _key(key: Any) -> str:
    if isinstance(key, str):
        return encode_string(key)
    if isinstance(key, int | float) and not isinstance(key, bool):
        return f'"{format_number(key)}"'
    raise CannotEncode("Cannot serialise table: table key must be a number or string")
