"""What differs between the OpenAI-compatible servers, as data: a ``Dialect`` of small records.

The defaults are the OpenAI API's own; each server's dialect lives with that server (``openai``,
``ollama_v1``, ``llamacpp_v1``, ``tgi_v1``) and states only where it departs. The records follow
what the shared handlers do with them: read the request (``Requests``), refuse it (``Errors``),
answer it whole (``Replies``) or streamed (``Streaming``), list models (``Models``) and embed text
(``Embeddings``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import Call, JsonReply, Reply, sse_frame
from .generation import Generation

EMBEDDING_DIMENSIONS = 384
MODEL_CREATED = 1_700_000_000  # "created" of listed models: a fixed date, there is no model file
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# (status, message, param, code) -> the error reply
ErrorBuilder = Callable[[int, str, str | None, str | None], Reply]


def openai_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JsonReply:
    """OpenAI's ``{"error": {message, type, param, code}}``."""
    if status == 429:
        kind, code = "requests", code or "rate_limit_exceeded"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
        if status == 401:
            code = code or "invalid_api_key"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JsonReply(status, body)


def _openai_not_json(body: bytes) -> Reply:
    return openai_error(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
    )


def alphanumeric(digest: bytes, length: int) -> str:
    """``length`` characters of [0-9A-Za-z] from a digest: the body of an OpenAI-style id."""
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[index])
    return "".join(chars)


def _exact_model(models: tuple[str, ...], requested: str) -> str | None:
    return requested if requested in models else None


@dataclass(frozen=True)
class Requests:
    """How a request is read and how strictly it is checked."""

    strict: bool = True  # OpenAI's own validation (roles, max_tokens >= 1, stop <= 4, options)
    serves_one_model: bool = False  # ignores the requested model; reports settings.models[0]
    # (served models, requested name) -> the served model it names, or None (a 404)
    model_matcher: Callable[[tuple[str, ...], str], str | None] = _exact_model
    max_tokens_fields: tuple[str, ...] = ("max_completion_tokens", "max_tokens")  # precedence
    completion_max_tokens: int | None = 16  # legacy completions' limit when none is given
    stop_must_be_list: bool = False  # TGI: a string "stop" is a deserialization error
    rejects_n: bool = True  # n != 1 is refused (where the real server would honour it)
    # n is honoured from 1 to this many choices (OpenAI: 128); None: ``rejects_n`` decides
    n_max: int | None = None
    empty_messages_ok: bool = False  # llama.cpp: ``messages: []`` is templated like any chat
    prompt_required: bool = True  # False: a missing prompt is "" (Ollama)
    prompt_string_only: bool = False  # Ollama: /v1/completions takes only a string prompt
    # Ollama embeds with a model it has (404 otherwise); OpenAI-style mocks take any embedder's
    # name, since the chat models they serve are not embedding models
    embedding_model_checked: bool = False


@dataclass(frozen=True)
class Errors:
    """What a refused request gets: the error shape, and the server's words for the usual
    mistakes."""

    build: ErrorBuilder = openai_error
    not_json: Callable[[bytes], Reply] = _openai_not_json  # the body is empty or not JSON
    # A body the server cannot deserialise (TGI: axum's plain text, before any of TGI's code).
    reject_body: Callable[[int, str], Reply] | None = None  # None: ``build``
    body_status: int = 400  # that rejection's status (TGI/axum: 422)
    missing_model: str = "you must provide a model parameter"
    missing_messages: str = "'messages' is a required property"
    empty_messages: str = (
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
        "empty array instead."
    )
    missing_prompt: str = "you must provide a 'prompt' parameter"
    only_one_choice: Callable[[Any], str] = (  # the refusal of n != 1 (``rejects_n``)
        lambda n: f"This mock generates one choice per request: 'n' must be 1, got {n!r}."
    )
    only_one_choice_status: int = 400  # llama.cpp throws it outside its try: a 500
    model_not_found: Callable[[str, str], str] = (  # (model, request path) -> the 404 message
        lambda m, path: f"The model `{m}` does not exist or you do not have access to it."
    )


@dataclass(frozen=True)
class Replies:
    """A non-streamed reply's body, and the envelope every stream chunk shares with it."""

    content_type: str = "application/json"  # of every JSON reply, the model list's included
    system_fingerprint: str | None = "fp_6b68a8204b"  # None: the key is absent
    chat_id: Callable[[bytes], str] = lambda digest: "chatcmpl-" + alphanumeric(digest, 29)
    completion_id: Callable[[bytes], str] = lambda digest: "cmpl-" + alphanumeric(digest, 29)
    chat_logprobs: bool = True  # choices carry "logprobs": null
    completion_logprobs: bool = True
    usage_details: bool = True  # OpenAI's prompt/completion token details
    # (prompt tokens, predicted tokens) -> llama.cpp's "timings", on the non-stream reply and
    # the final chunk; None: no timings
    timings: Callable[[int, int], dict[str, float]] | None = None
    stop_sequence_finish: str = "stop"  # finish_reason when a stop sequence ended the text
    # a generation's count in usage.completion_tokens (TGI counts the closing </s> too)
    completion_tokens: Callable[[Generation], int] = lambda gen: gen.completion_tokens
    message_extras: Mapping[str, Any] = field(  # extra keys of a non-stream chat message
        default_factory=lambda: {"refusal": None, "annotations": []}
    )
    response_extras: Mapping[str, Any] = field(  # extra top-level keys of a non-stream chat reply
        default_factory=lambda: {"service_tier": "default"}
    )


@dataclass(frozen=True)
class Streaming:
    """The chunks of a streamed reply."""

    content_type: str = "text/event-stream; charset=utf-8"
    role_chunk_content: str | None | bool = ""  # False: no separate role chunk; else its content
    role_on_every_delta: bool = False
    finish_delta: Mapping[str, Any] = field(default_factory=dict)  # delta of the finish chunk
    finish_on_last_token: bool = False  # TGI: a "length" finish rides on the last token's chunk
    usage_null: str = "requested"  # "never" | "requested" (with include_usage) | "always"
    # llama.cpp: the final chunk of either stream always carries usage (no usage chunk of its own)
    final_usage: bool = False
    # message -> the body of the error event sent after the stream started; None: the body of
    # the dialect's error(500, message)
    error_body: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class Models:
    """``/v1/models`` and ``/v1/models/{model}``."""

    owned_by: str | None = "system"  # None: the model id itself (TGI)
    created: int = MODEL_CREATED  # "created" of a listed model
    shown: Callable[[str], str] = lambda name: name  # a model id as listed (Ollama's tags)
    listing: Callable[[Call], Any] | None = None  # the whole list body; None: model_entry each
    public: bool = False  # reachable without the API key
    retrievable: bool = True  # GET /v1/models/{model} exists


@dataclass(frozen=True)
class Embeddings:
    """``/v1/embeddings``."""

    dimensions: int = EMBEDDING_DIMENSIONS  # vector length without "dimensions"
    # requested dimensions -> vector length, for a server that accepts any integer (Ollama);
    # None: exactly as requested, which must be >= 1
    fit: Callable[[int], int] | None = None


@dataclass(frozen=True, eq=False)
class Dialect:
    """One OpenAI-compatible server's ways; the defaults are the OpenAI API's."""

    name: str
    requests: Requests = field(default_factory=Requests)
    errors: Errors = field(default_factory=Errors)
    replies: Replies = field(default_factory=Replies)
    stream: Streaming = field(default_factory=Streaming)
    models: Models = field(default_factory=Models)
    embeddings: Embeddings | None = field(default_factory=Embeddings)  # None: no /v1/embeddings
    aliases: tuple[tuple[str, str], ...] = ()  # (v1 path, alias path) served by the same handler

    def error(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> Reply:
        """An error in this server's dialect; fits ``MockKind.error``."""
        return self.errors.build(status, message, param, code)

    def rejected_body(self, status: int, message: str) -> Reply:
        return (self.errors.reject_body or self.error)(status, message)

    def stream_error(self, message: str) -> bytes:
        """The SSE event this server sends for an error after the stream started."""
        if self.stream.error_body is not None:
            return sse_frame(self.stream.error_body(message))
        error = self.error(500, message)
        assert isinstance(error, JsonReply)
        return sse_frame(error.body)

    def model_entry(self, name: str) -> dict[str, Any]:
        """A model as ``/v1/models`` lists it."""
        return {
            "id": self.models.shown(name),
            "object": "model",
            "created": self.models.created,
            "owned_by": self.models.owned_by or name,
        }
