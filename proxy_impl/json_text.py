"""JSON text as the proxy writes it: to the upstream, to the client and to the log.

Compact (no spaces after ``,`` and ``:``) and with non-ASCII characters kept as they are, as
Kong's cjson writes them. Text, not bytes: a caller that writes to the network encodes it.
``json_bytes`` picks between this and Kong's own encoding (``kong_json``, lua-cjson's escapes
and number formatting) by the behaviour's ``cjson_encoding`` flag.
"""

from __future__ import annotations

import json
from typing import Any

from . import kong_json

# Built once: ``json.dumps`` with options builds a new encoder on every call, which costs as
# much as encoding a small reply (about 5 us of 10; once per request, and per streamed chunk).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_COMPACT_FINITE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def compact_json(value: Any) -> str:
    return _COMPACT.encode(value)


def finite_compact_json(value: Any) -> str:
    """``compact_json``, but ``ValueError`` for NaN and the infinities (which are not JSON)."""
    return _COMPACT_FINITE.encode(value)


def json_bytes(value: Any, *, cjson: bool, empty_array_as_object: bool = False) -> bytes:
    """``value`` as the bytes the proxy sends: Kong's cjson text when ``cjson`` (an empty list
    as ``{}`` when it came from an upstream's reply, see ``kong_json``), else ``compact_json``.
    cjson refuses NaN and the infinities: ``kong_json.CannotEncode``, in cjson's words."""
    if cjson:
        return kong_json.encode(value, empty_array_as_object=empty_array_as_object)
    return compact_json(value).encode()
