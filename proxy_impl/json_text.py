"""JSON text as the proxy writes it: to the upstream, to the client and to the log.

Compact (no spaces after ``,`` and ``:``) and with non-ASCII characters kept as they are, as
Kong's cjson writes them. Text, not bytes: a caller that writes to the network encodes it.
``json_bytes`` picks between this and Kong's own encoding (``kong_json``, lua-cjson's escapes
and number formatting) by the behaviour's ``cjson_encoding`` flag.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

from . import kong_json


def _encoder(allow_nan: bool) -> Callable[[Any], str]:
    """A compact encoder made once. ``json.dumps`` with options builds an encoder per call, and
    even a kept ``JSONEncoder`` builds its C encoder per call and tracks every container against
    cycles (which decoded JSON cannot have): together as much as encoding a small reply. Where
    CPython's C encoder is there, it is built once, without that tracking; the text is the
    same, as ``JSONEncoder`` uses the same C encoder."""
    kept = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)
    make = json.encoder.c_make_encoder
    if make is None:  # another Python: the pure-Python encoder
        return kept.encode
    encode = make(None, kept.default, json.encoder.encode_basestring, None, ":", ",", False,
                  False, allow_nan)  # fmt: skip
    return lambda value: "".join(encode(value, 0))


_COMPACT = _encoder(allow_nan=True)
_COMPACT_FINITE = _encoder(allow_nan=False)


def compact_json(value: Any) -> str:
    return _COMPACT(value)


def finite_compact_json(value: Any) -> str:
    """``compact_json``, but ``ValueError`` for NaN and the infinities (which are not JSON)."""
    return _COMPACT_FINITE(value)


def json_bytes(value: Any, *, cjson: bool, empty_array_as_object: bool = False) -> bytes:
    """``value`` as the bytes the proxy sends: Kong's cjson text when ``cjson`` (an empty list
    as ``{}`` when it came from an upstream's reply, see ``kong_json``), else ``compact_json``.
    cjson refuses NaN and the infinities: ``kong_json.CannotEncode``, in cjson's words."""
    if cjson:
        return kong_json.encode(value, empty_array_as_object=empty_array_as_object)
    return compact_json(value).encode()
