"""What the pipeline tells the relay about one streaming request, and which translator reads
the upstream's answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..model import OLLAMA, OPENAI, RAW
from .ollama import OllamaTranslator
from .openai import OpenAITranslator
from .outcome import StreamOutcome
from .raw import RawTranslator
from .translator import Translator

Framing = Literal["sse", "ndjson", "json", "other"]

# The framing each format streams in, assumed when the upstream names no content type.
_NATIVE: dict[str, Framing] = {OLLAMA: "ndjson", RAW: "sse", OPENAI: "sse"}


@dataclass(frozen=True)
class StreamPlan:
    llama2_format: str  # raw | ollama | openai
    route_type: str  # llm/v1/chat | llm/v1/completions
    model: str  # the resolved model name: the chunks' "model" unless the upstream names one
    kong_compat: bool = False
    include_usage: bool = False  # the client sent stream_options.include_usage: true
    max_tokens: int | None = None  # effective token limit (Ollama's finish-reason inference)
    # The upstream's own headers (minus those the relay sets or recomputes) and the proxy's
    # (X-Kong-LLM-Model, latency headers): on the 200 stream, or on the 500 of a failed decode.
    headers_to_add: Mapping[str, str] = field(default_factory=dict)
    # The non-streaming decoder of this format and route: upstream JSON body -> client reply.
    # Used when the upstream answers a streaming request with one JSON document. It raises
    # ValueError with the client-facing message when the body cannot be transformed.
    decode_json: Callable[[bytes], Mapping[str, Any]] | None = None
    keep_text: bool = False  # put the whole reply text in the outcome (payload logging)
    on_done: Callable[[StreamOutcome], None] | None = None  # called once, however it ended


def framing_of(content_type: str | None, llama2_format: str) -> Framing:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media:
        return _NATIVE[llama2_format]
    if media == "text/event-stream":
        return "sse"
    if media in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        return "ndjson"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    return "other"


def translator_for(plan: StreamPlan, framing: Framing) -> Translator | None:
    """The translator for this format's stream; None when the framing is not the one it speaks."""
    if framing != _NATIVE[plan.llama2_format]:
        return None
    if plan.llama2_format == OLLAMA:
        return OllamaTranslator(max_tokens=plan.max_tokens, kong_compat=plan.kong_compat)
    if plan.llama2_format == OPENAI:
        return OpenAITranslator(kong_compat=plan.kong_compat)
    return RawTranslator()
