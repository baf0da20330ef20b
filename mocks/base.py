"""The contract between a mock server's protocol handlers and the machinery around them.

A handler is a pure function from a ``Call`` (the received request plus the mock's settings) to a
reply value: ``JsonReply``, ``BytesReply`` or ``StreamReply`` (a list of ready-made frames). The
request pipeline (``pipeline``) journals the request, checks the API key and applies scripted
responses and faults; ``transmit`` alone owns the socket (latency, per-chunk delay, resets,
truncation, ...). Handlers therefore never sleep, never touch the transport and are trivially
testable.

Each server module (``ollama``, ``huggingface``, ``llamacpp``, ``openai``) exposes ``KIND``: a
``MockKind`` naming its endpoints and the error bodies it answers in its own dialect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .generation import Generation, generate

NOT_JSON = object()  # Call.json when the body is empty or not strict JSON (``strict_json``)


JOURNAL_ENTRIES = 1000  # requests the journal keeps by default; older ones are dropped, counted
JOURNAL_BODY_BYTES = 1024 * 1024  # bytes of each request body the journal keeps by default


@dataclass(frozen=True)
class MockSettings:
    api_key: str | None = None  # when set, non-public routes require it (Bearer or the kind's way)
    models: tuple[str, ...] = ("llama2",)  # models the server "has"; the first is the default
    latency: float = 0.0  # seconds to wait before answering every generation request
    journal_entries: int = JOURNAL_ENTRIES
    journal_body_bytes: int = JOURNAL_BODY_BYTES
    # when set, every /__mock__/ route requires ``Authorization: Bearer <token>``
    control_token: str | None = field(default=None, repr=False)


@dataclass(slots=True)  # one per request; the journal keeps the latest (settings)
class Call:
    method: str
    path: str
    match_info: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]  # case-insensitive (a CIMultiDictProxy)
    body: bytes
    settings: MockSettings
    json: Any = NOT_JSON
    scripted_reply: str | None = None  # text a control-API script put in place of the generation
    # Replaces this mock instance's models (Ollama's pull, copy, delete); the control API's reset
    # restores the configured ones. None where no state is kept (a handler called directly).
    set_models: Callable[[tuple[str, ...]], None] | None = None
    generated: bool = False  # set by ``generate``: the pipeline applies ``settings.latency`` then

    def generate(
        self,
        model: str,
        prompt_key: str,
        *,
        prompt_tokens: int,
        seed: int | None = None,
        max_tokens: int | None = None,
        stop: Iterable[str] = (),
        reply: str | None = None,
    ) -> Generation:
        """``generation.generate``; a scripted reply wins over ``reply`` (a handler's own text)."""
        self.generated = True
        if self.scripted_reply is not None:
            reply = self.scripted_reply
        return generate(
            model, prompt_key, prompt_tokens=prompt_tokens, seed=seed, max_tokens=max_tokens,
            stop=stop, reply=reply,
        )


@dataclass
class JsonReply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class BytesReply:
    status: int
    body: bytes
    content_type: str | None = "text/plain; charset=utf-8"  # None: no Content-Type (axum's own)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamReply:
    """A streamed reply: ``frames`` are written one by one (the unit of per-chunk faults)."""

    frames: list[bytes]
    content_type: str = "text/event-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before each frame (a replayed cassette's recorded pacing); () = none
    delays: tuple[float, ...] = ()


Reply = JsonReply | BytesReply | StreamReply
Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Endpoint:
    """A method and path a mock serves, and the handler that answers it."""

    method: str  # "GET", "POST", ... ("GET" also answers HEAD)
    path: str  # an aiohttp pattern, e.g. "/models/{model_id:.+}"
    handler: Handler
    public: bool = False  # reachable without the API key (health, info, model lists)
    # The mid-stream error frame of this endpoint's protocol when it differs from the kind's
    # (Ollama's native routes speak NDJSON, its /v1 ones SSE); None: ``MockKind.stream_error``.
    stream_error: Callable[[str], bytes] | None = None


@dataclass(frozen=True)
class MockKind:
    name: str  # "ollama", "huggingface", "llamacpp", "openai"
    default_port: int  # what `proxyproof mock NAME` listens on without --port
    endpoints: tuple[Endpoint, ...]
    unauthorized: Handler  # the reply to a missing or wrong API key
    not_found: Handler  # the reply to an unknown path
    error: Callable[[int, str], Reply]  # any error (status, message) in this server's dialect
    loading: Callable[[Call, float], Reply]  # the "model is loading" reply (estimated seconds)
    stream_error: Callable[[str], bytes]  # a stream's mid-stream error frame (Endpoint's overrides)
    # The reply to a known path with a wrong method; None: ``error(405, ...)`` (the pipeline adds
    # ``Allow``). Ollama's gin answers in plain text.
    method_not_allowed: Handler | None = None
    description: str = ""
    x_api_key: bool = False  # the API key is also accepted in an X-Api-Key header (llama.cpp)
    # Go's encoding/json (Ollama) reads invalid UTF-8 and lone surrogates as U+FFFD; the others
    # refuse the body (``strict_json``).
    replaces_bad_unicode: bool = False
    # A gzip, deflate or br request body gets 415 (cpp-httplib without zlib: llama.cpp) rather
    # than the kind's not-JSON answer.
    refuses_content_encoding: bool = False


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: hot path


_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: Any) -> bytes:
    try:
        return _COMPACT.encode(value).encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from a request: escape it, as JSON may
        return _COMPACT_ASCII.encode(value).encode()


def sse_frame(value: Any) -> bytes:
    """One SSE event carrying ``value`` as compact JSON (or a literal like ``[DONE]``)."""
    payload = value.encode() if isinstance(value, str) else compact_json(value)
    return b"data: " + payload + b"\n\n"


def ndjson_line(value: Any) -> bytes:
    return compact_json(value) + b"\n"
