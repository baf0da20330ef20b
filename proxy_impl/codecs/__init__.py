"""Pure translations between the client's OpenAI-style body and each ``llama2_format``.

A codec is two functions: ``encode(body, exchange)`` gives the upstream JSON for a planned
request, and ``decode(upstream_body, exchange, stamp)`` gives the client body for an upstream 200
(or raises ``TransformError`` with Kong's reason). No I/O, no clock, no randomness: the id and
time a reply may need come in as the ``ReplyStamp``.
"""

from __future__ import annotations

from . import ollama, openai, raw
from .exchange import Codec, EncodeError, Exchange, TransformError

CODECS = {codec.name: codec for codec in (raw.CODEC, ollama.CODEC, openai.CODEC)}


def codec_for(llama2_format: str) -> Codec:
    return CODECS[llama2_format]


__all__ = ["Codec", "EncodeError", "Exchange", "TransformError", "codec_for"]
