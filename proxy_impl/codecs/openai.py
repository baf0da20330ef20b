"""``llama2_format: openai``: an OpenAI-compatible server (llama-cpp-python, vLLM, LocalAI, ...)
behind the proxy (Kong: ``kong/llm/drivers/openai.lua``, which llama2 delegates to;
docs/kong-behaviour.md#openai-format).

The client's body goes upstream with the resolved model, a boolean ``stream``, the configured
tuning options and no ``top_k``; a 200 that is JSON with ``choices`` comes back untouched,
byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import OPENAI, ReplyStamp
from .exchange import Codec, Exchange, TransformError, parse_upstream
from .lua_errors import OPENAI_CHOICES_LINE, OPENAI_LUA, indexable, lua_error, lua_type


def encode(body: Mapping[str, Any], exchange: Exchange) -> dict[str, Any]:
    request = {name: value for name, value in body.items() if name != "top_k"}
    request["model"] = exchange.model
    request["stream"] = exchange.stream
    return request


def decode(upstream_body: bytes, exchange: Exchange, stamp: ReplyStamp) -> bytes:
    """The upstream's own body, untouched: ``stamp`` is unused."""
    route_type = exchange.route_type
    value = parse_upstream(upstream_body, f"failed to decode {route_type} response")
    missing = TransformError(f"'choices' not in {route_type} response")
    if exchange.behaviour.openai_choices_lua_truth:
        # Kong's `if response_object.choices`: a JSON null is truthy there; a reply Lua cannot
        # index by name fails with Lua's error, an array or a string has no `choices`
        if not indexable(value):
            raise TransformError(lua_error(
                OPENAI_LUA, OPENAI_CHOICES_LINE[route_type],
                f"attempt to index local 'response_object' (a {lua_type(value)} value)",
            ))
        if not isinstance(value, Mapping) or value.get("choices", False) is False:
            raise missing
        return upstream_body
    if not isinstance(value, Mapping) or value.get("choices") is None:
        raise missing
    return upstream_body


CODEC = Codec(OPENAI, encode, decode)
