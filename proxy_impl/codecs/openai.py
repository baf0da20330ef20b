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


def encode(body: Mapping[str, Any], exchange: Exchange) -> dict[str, Any]:
    request = {name: value for name, value in body.items() if name != "top_k"}
    request["model"] = exchange.model
    request["stream"] = exchange.stream
    return request


def decode(upstream_body: bytes, exchange: Exchange, stamp: ReplyStamp) -> bytes:
    """The upstream's own body, untouched: ``stamp`` is unused."""
    value = parse_upstream(upstream_body, f"failed to decode {exchange.route_type} response")
    if not isinstance(value, Mapping) or value.get("choices") is None:
        raise TransformError(f"'choices' not in {exchange.route_type} response")
    return upstream_body


CODEC = Codec(OPENAI, encode, decode)
