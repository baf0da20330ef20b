"""Pure translations between the client's OpenAI-style body and each ``llama2_format``.

A codec is two functions: ``encode(body, exchange)`` gives the upstream JSON for a planned
request, and ``decode(upstream_body, exchange)`` gives the client body for an upstream 200 (or
raises ``TransformError`` with Kong's reason). No I/O, no clock beyond ``created``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..behaviour import Behaviour


class EncodeError(ValueError):
    """The request cannot be expressed in the upstream format (a 400 for the client)."""


class TransformError(ValueError):
    """An upstream 200 whose body cannot be translated; ``str(error)`` is Kong's reason."""


@dataclass(frozen=True)
class Exchange:
    """What the codecs need to know about one request."""

    route_type: str  # llm/v1/chat | llm/v1/completions
    model: str  # the resolved model name
    stream: bool  # the client gets a stream
    configured_max_tokens: int | None  # config.model.options.max_tokens (Kong's finish rule)
    effective_max_tokens: int | None  # after config/client precedence
    behaviour: Behaviour

    @property
    def chat(self) -> bool:
        return self.route_type == "llm/v1/chat"


@dataclass(frozen=True)
class Codec:
    name: str
    encode: Callable[[Mapping[str, Any], Exchange], dict[str, Any]]
    decode: Callable[[bytes, Exchange], bytes]


def compact_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def codec_for(llama2_format: str) -> Codec:
    from . import ollama, openai, raw

    codecs = {"raw": raw.CODEC, "ollama": ollama.CODEC, "openai": openai.CODEC}
    return codecs[llama2_format]
