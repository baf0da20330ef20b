"""OpenAI-compatible routes (chat, legacy completions, models, embeddings) as pure handlers.

One implementation serves four servers. A ``Dialect`` holds what differs between them, as data:
the OpenAI API itself, Ollama's ``/v1/*`` (``openai/openai.go`` + its middleware), llama.cpp's
OpenAI routes (``server-task.cpp``) and TGI's Messages API (``router/src/chat.rs``). See
``shared/reference/hf_openai.md`` §2.6 and §4-§8 and ``ollama_llamacpp.md`` §1.10 and §2.4.

Choices worth knowing:

- A reply is a function of the request's content, byte for byte: the text, the ``id`` and even
  ``created`` derive from a digest of the request's JSON (canonically encoded, so a replayed or
  re-serialised request gets the identical reply). ``created`` is therefore a plausible fixed
  timestamp (late 2023 to late 2024), not the current time; a harness can predict whole bodies.
- OpenAI-checking dialects (OpenAI, Ollama) answer 404 for a model outside ``settings.models``;
  llama.cpp and TGI ignore the requested name and report the model they serve
  (``settings.models[0]``), which is also the model the reply is generated for.
- One choice per request: ``n`` other than 1 (and several prompts) are rejected with a 400 where
  the real server would honour them, and silently ignored where the real server ignores ``n``.
- Embeddings accept any model name: a vector is a function of the input text and the dimension
  only (unit length; similar texts are not close).

Each handler carries a ``stream_error`` attribute: the dialect's mid-stream error frame, which the
I/O edge prefers over ``MockKind.stream_error`` (Ollama's native routes speak NDJSON, its ``/v1``
routes SSE).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import generation
from .base import (
    NOT_JSON,
    BytesReply,
    Call,
    Handler,
    JsonReply,
    Reply,
    Route,
    StreamReply,
    sse_frame,
)

EMBEDDING_DIMENSIONS = 384
MODEL_CREATED = 1_700_000_000  # "created" of listed models: a fixed date, there is no model file
CREATED_SPAN = 31_536_000  # replies are "created" within a year after MODEL_CREATED
MAX_STOP_SEQUENCES = 4
DONE_FRAME = sse_frame("[DONE]")
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# --- error bodies ---------------------------------------------------------------------------


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


def ollama_openai_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JsonReply:
    """Ollama's ``openai.NewError``: the OpenAI shape, type by status, ``param``/``code`` null."""
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JsonReply(status, body)


_LLAMACPP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    501: "not_supported_error",
    503: "unavailable_error",
}


def llamacpp_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JsonReply:
    """llama.cpp's ``format_error_response``: ``{"error": {code, message, type}}``."""
    kind = _LLAMACPP_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"code": status, "message": message, "type": kind}}
    return JsonReply(status, body, content_type="application/json; charset=utf-8")


_TGI_TYPES = {422: "validation", 424: "generation", 429: "overloaded", 503: "unhealthy"}


def tgi_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JsonReply:
    """TGI's flat ``{"error": str, "error_type": str}``."""
    kind = _TGI_TYPES.get(status, "incomplete_generation" if status >= 500 else "validation")
    return JsonReply(status, {"error": message, "error_type": kind})


def _tgi_body_rejection(status: int, message: str) -> Reply:
    # axum's Json extractor answers in plain text before TGI's own code runs.
    return BytesReply(status, message.encode(), content_type="text/plain; charset=utf-8")


# --- dialects -------------------------------------------------------------------------------

ErrorBuilder = Callable[[int, str, str | None, str | None], Reply]


@dataclass(frozen=True, eq=False)
class Dialect:
    """Everything that differs between the OpenAI-compatible servers, as data."""

    name: str
    build_error: ErrorBuilder  # (status, message, param, code) -> the server's error reply
    stream_error_body: Callable[[str], Any]  # message -> the JSON of a mid-stream error event
    json_content_type: str
    sse_content_type: str
    system_fingerprint: str | None  # None: the key is absent
    chat_id: Callable[[bytes], str]  # request digest -> completion id
    completion_id: Callable[[bytes], str]
    owned_by: str | None  # None: the model id itself (TGI)
    serves_one_model: bool  # ignores the requested model; reports settings.models[0]
    strict: bool  # OpenAI's own validation (roles, max_tokens >= 1, stream_options, n)
    role_chunk_content: str | None | bool  # False: no separate role chunk; else its content
    role_on_every_delta: bool
    finish_delta: Mapping[str, Any]  # the delta of the chunk that carries finish_reason
    finish_on_last_token: bool  # TGI: a "length" finish rides on the last token's chunk
    chat_logprobs: bool  # choices carry "logprobs": null
    completion_logprobs: bool
    usage_null: str  # "never" | "requested" (with include_usage) | "always": "usage": null
    message_extras: Mapping[str, Any]  # extra keys of a non-stream chat message
    response_extras: Mapping[str, Any]  # extra top-level keys of a non-stream response
    usage_details: bool  # OpenAI's prompt/completion token details
    timings: bool  # llama.cpp's "timings" on the final chunk and the non-stream reply
    completion_final_usage: bool  # llama.cpp: the final completions chunk always carries usage
    completion_max_tokens_default: int | None  # OpenAI legacy completions: 16
    max_tokens_fields: tuple[str, ...]  # request fields for the token limit, in precedence order
    stop_sequence_finish: str  # finish_reason when a stop sequence ended the text
    stop_must_be_list: bool  # TGI: a string "stop" is a deserialization error
    models_public: bool  # /v1/models reachable without the API key
    retrieve_model: bool  # GET /v1/models/{model}
    embeddings: bool
    missing_model: str
    missing_messages: str
    empty_messages: str
    missing_prompt: str | None  # None: a missing prompt is an empty one
    not_json: Callable[[bytes], Reply]
    model_matcher: Callable[[tuple[str, ...], str], str | None]
    model_not_found: Callable[[str], str]  # the 404 message
    list_models: Callable[[Call], Any]
    aliases: tuple[tuple[str, str], ...] = ()  # (v1 path, alias path) served by the same handler
    reject_body: Callable[[int, str], Reply] | None = None  # None: self.error
    body_status: int = 400  # status of a body the server cannot deserialise (TGI/axum: 422)
    rejects_n: bool = False  # n != 1 is refused (where the real server would honour it)
    prompt_string_only: bool = False  # Ollama: /v1/completions takes only a string prompt
    shown_model: Callable[[str], str] = lambda name: name  # a model id as listed (Ollama tags)

    def error(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> Reply:
        """An error in this server's dialect; fits ``MockKind.error``."""
        return self.build_error(status, message, param, code)

    def stream_error(self, message: str) -> bytes:
        """The SSE event this server sends for an error after the stream started."""
        return sse_frame(self.stream_error_body(message))

    def rejected_body(self, status: int, message: str) -> Reply:
        return (self.reject_body or self.error)(status, message)


def _alphanumeric(digest: bytes, length: int) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[index])
    return "".join(chars)


def _exact_model(models: tuple[str, ...], requested: str) -> str | None:
    return requested if requested in models else None


def _ollama_tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def _ollama_model(models: tuple[str, ...], requested: str) -> str | None:
    """Ollama's rule: ``name`` and ``name:latest`` are one model (names are case-insensitive)."""
    wanted = _ollama_tagged(requested).lower()
    return next((m for m in models if _ollama_tagged(m).lower() == wanted), None)


def _model_entry(model_id: str, owned_by: str, created: int = MODEL_CREATED) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def _openai_models(call: Call) -> Any:
    return {"object": "list", "data": [_model_entry(m, "system") for m in call.settings.models]}


def _ollama_models(call: Call) -> Any:
    data = [_model_entry(_ollama_tagged(m), "library") for m in call.settings.models]
    return {"object": "list", "data": data}


def _llamacpp_models(call: Call) -> Any:
    model = call.settings.models[0]
    meta = {
        "vocab_type": 1,
        "n_vocab": 32000,
        "n_ctx_train": 4096,
        "n_embd": 4096,
        "n_params": 6_738_415_616,
        "size": 3_825_065_984,
    }
    entry = {**_model_entry(model, "llamacpp"), "meta": meta}
    # The Ollama-style list llama.cpp adds for clients that probe /api/tags-like shapes.
    legacy = {
        "name": model,
        "model": model,
        "modified_at": "",
        "size": "",
        "digest": "",
        "type": "model",
        "description": "",
        "tags": [""],
        "capabilities": ["completion"],
        "parameters": "",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "",
            "families": [""],
            "parameter_size": "",
            "quantization_level": "",
        },
    }
    return {"models": [legacy], "object": "list", "data": [entry]}


def _tgi_models(call: Call) -> Any:
    model = call.settings.models[0]
    return {"object": "list", "data": [_model_entry(model, model, 0)]}


def _openai_not_json(body: bytes) -> Reply:
    return openai_error(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
    )


def _ollama_not_json(body: bytes) -> Reply:
    # Go's encoding/json messages, as gin's ShouldBindJSON reports them.
    stripped = body.lstrip()
    if not stripped:
        return ollama_openai_error(400, "EOF")
    first = stripped[:1].decode("latin-1")
    if first in '{["-0123456789tfn':  # starts like JSON: most likely cut short
        return ollama_openai_error(400, "unexpected EOF")
    return ollama_openai_error(400, f"invalid character '{first}' looking for beginning of value")


def _llamacpp_not_json(body: bytes) -> Reply:
    # nlohmann::json throws; llama.cpp's exception wrapper turns it into a 500.
    last = body.lstrip()[:1].decode("latin-1") or "<EOF>"
    return llamacpp_error(
        500,
        "[json.exception.parse_error.101] parse error at line 1, column 1: syntax error while "
        f"parsing value - invalid literal; last read: '{last}'",
    )


def _tgi_not_json(body: bytes) -> Reply:
    detail = "EOF while parsing a value at line 1 column 0" if not body.strip() else (
        "expected value at line 1 column 1"
    )
    return _tgi_body_rejection(400, f"Failed to parse the request body as JSON: {detail}")


def _openai_stream_error(message: str) -> Any:
    return {"error": {"message": message, "type": "server_error", "param": None, "code": None}}


OPENAI = Dialect(
    name="openai",
    build_error=openai_error,
    stream_error_body=_openai_stream_error,
    json_content_type="application/json",
    sse_content_type="text/event-stream; charset=utf-8",
    system_fingerprint="fp_6b68a8204b",
    chat_id=lambda digest: "chatcmpl-" + _alphanumeric(digest, 29),
    completion_id=lambda digest: "cmpl-" + _alphanumeric(digest, 29),
    owned_by="system",
    serves_one_model=False,
    strict=True,
    role_chunk_content="",
    role_on_every_delta=False,
    finish_delta={},
    finish_on_last_token=False,
    chat_logprobs=True,
    completion_logprobs=True,
    usage_null="requested",
    message_extras={"refusal": None, "annotations": []},
    response_extras={"service_tier": "default"},
    usage_details=True,
    timings=False,
    completion_final_usage=False,
    completion_max_tokens_default=16,
    max_tokens_fields=("max_completion_tokens", "max_tokens"),
    stop_sequence_finish="stop",
    stop_must_be_list=False,
    models_public=False,
    retrieve_model=True,
    embeddings=True,
    missing_model="you must provide a model parameter",
    missing_messages="'messages' is a required property",
    empty_messages=(
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
        "empty array instead."
    ),
    missing_prompt="you must provide a 'prompt' parameter",
    not_json=_openai_not_json,
    model_matcher=_exact_model,
    model_not_found=lambda m: f"The model `{m}` does not exist or you do not have access to it.",
    list_models=_openai_models,
    rejects_n=True,
)

OLLAMA = Dialect(
    name="ollama",
    build_error=ollama_openai_error,
    stream_error_body=lambda message: {
        "error": {"message": message, "type": "api_error", "param": None, "code": None}
    },
    json_content_type="application/json; charset=utf-8",
    sse_content_type="text/event-stream",
    system_fingerprint="fp_ollama",
    chat_id=lambda digest: f"chatcmpl-{int.from_bytes(digest[:4], 'big') % 999}",
    completion_id=lambda digest: f"cmpl-{int.from_bytes(digest[:4], 'big') % 999}",
    owned_by="library",
    serves_one_model=False,
    strict=False,
    role_chunk_content=False,
    role_on_every_delta=True,
    finish_delta={"role": "assistant", "content": ""},
    finish_on_last_token=False,
    chat_logprobs=False,
    completion_logprobs=False,
    usage_null="never",
    message_extras={},
    response_extras={},
    usage_details=False,
    timings=False,
    completion_final_usage=False,
    completion_max_tokens_default=None,
    max_tokens_fields=("max_tokens",),
    stop_sequence_finish="stop",
    stop_must_be_list=False,
    models_public=False,
    retrieve_model=True,
    embeddings=True,
    missing_model="model is required",
    missing_messages="[] is too short - 'messages'",
    empty_messages="[] is too short - 'messages'",
    missing_prompt=None,
    not_json=_ollama_not_json,
    model_matcher=_ollama_model,
    model_not_found=lambda m: f"model '{m}' not found",
    list_models=_ollama_models,
    prompt_string_only=True,
    shown_model=_ollama_tagged,
)

LLAMACPP = Dialect(
    name="llamacpp",
    build_error=llamacpp_error,
    stream_error_body=lambda message: {
        "error": {"code": 500, "message": message, "type": "server_error"}
    },
    json_content_type="application/json; charset=utf-8",
    sse_content_type="text/event-stream",
    system_fingerprint="b6100-3f4fc97f",
    chat_id=lambda digest: "chatcmpl-" + _alphanumeric(digest, 32),
    completion_id=lambda digest: "chatcmpl-" + _alphanumeric(digest, 32),
    owned_by="llamacpp",
    serves_one_model=True,
    strict=False,
    role_chunk_content=None,
    role_on_every_delta=False,
    finish_delta={},
    finish_on_last_token=False,
    chat_logprobs=False,
    completion_logprobs=True,
    usage_null="never",
    message_extras={},
    response_extras={},
    usage_details=False,
    timings=True,
    completion_final_usage=True,
    completion_max_tokens_default=None,
    max_tokens_fields=("n_predict", "max_completion_tokens", "max_tokens"),
    stop_sequence_finish="stop",
    stop_must_be_list=False,
    models_public=True,
    retrieve_model=False,
    embeddings=True,
    missing_model="",
    missing_messages="'messages' is required",
    empty_messages="'messages' is required",
    missing_prompt='"prompt" is required',
    not_json=_llamacpp_not_json,
    model_matcher=_exact_model,
    model_not_found=lambda m: f"model '{m}' not found",
    list_models=_llamacpp_models,
    aliases=(("/v1/chat/completions", "/chat/completions"), ("/v1/models", "/models")),
    rejects_n=True,
)

TGI = Dialect(
    name="tgi",
    build_error=tgi_error,
    stream_error_body=lambda message: {"error": {"message": message, "http_status_code": 500}},
    json_content_type="application/json",
    sse_content_type="text/event-stream",
    system_fingerprint="3.3.6-sha-9b2f6d7",
    chat_id=lambda digest: "",
    completion_id=lambda digest: "",
    owned_by=None,
    serves_one_model=True,
    strict=False,
    role_chunk_content=False,
    role_on_every_delta=True,
    finish_delta={"role": "assistant", "content": ""},
    finish_on_last_token=True,
    chat_logprobs=True,
    completion_logprobs=True,
    usage_null="always",
    message_extras={},
    response_extras={},
    usage_details=False,
    timings=False,
    completion_final_usage=False,
    completion_max_tokens_default=None,
    max_tokens_fields=("max_completion_tokens", "max_tokens"),
    stop_sequence_finish="stop_sequence",
    stop_must_be_list=True,
    models_public=True,
    retrieve_model=False,
    embeddings=False,
    missing_model="",
    missing_messages=(
        "Failed to deserialize the JSON body into the target type: missing field `messages` "
        "at line 1 column 2"
    ),
    empty_messages="Input validation error: `inputs` cannot be empty",
    missing_prompt=(
        "Failed to deserialize the JSON body into the target type: missing field `prompt` "
        "at line 1 column 2"
    ),
    not_json=_tgi_not_json,
    model_matcher=_exact_model,
    model_not_found=lambda m: f"model '{m}' not found",
    list_models=_tgi_models,
    reject_body=_tgi_body_rejection,
    body_status=422,
)

DIALECTS = {d.name: d for d in (OPENAI, OLLAMA, LLAMACPP, TGI)}


# --- request parsing ------------------------------------------------------------------------


class _NotJson(Exception):
    """The body is empty or not JSON: each server has its own words for that."""


class _Invalid(Exception):
    """A request the server refuses. ``body`` marks a rejection at deserialisation, which some
    servers word and shape differently (TGI: axum's plain text with the dialect's body_status)."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
        body: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code
        self.body = body

    def reply(self, dialect: Dialect) -> Reply:
        if self.body:
            return dialect.rejected_body(dialect.body_status, self.message)
        return dialect.error(self.status, self.message, param=self.param, code=self.code)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: Any) -> _Invalid:
    return _Invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param,
        code="invalid_type",
    )


def _request_object(dialect: Dialect, call: Call) -> dict[str, Any]:
    if call.json is NOT_JSON:
        raise _NotJson
    if not isinstance(call.json, dict):
        raise _Invalid(
            f"Invalid type for request body: expected an object, but got "
            f"{_json_type(call.json)} instead.",
            body=True,
        )
    return call.json


@dataclass(frozen=True)
class _Options:
    model: str  # the model the reply is generated for and reported as
    max_tokens: int | None
    stop: tuple[str, ...]
    seed: int | None
    stream: bool
    include_usage: bool


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _model(dialect: Dialect, call: Call, request: Mapping[str, Any], *, check: bool) -> str:
    if dialect.serves_one_model:
        return call.settings.models[0]
    requested = request.get("model")
    if requested is None or requested == "":
        raise _Invalid(dialect.missing_model, "model")
    if not isinstance(requested, str):
        raise _wrong_type("model", "a string", requested)
    if check and dialect.model_matcher(call.settings.models, requested) is None:
        raise _Invalid(dialect.model_not_found(requested), status=404, code="model_not_found")
    return requested


def _max_tokens(dialect: Dialect, request: Mapping[str, Any], default: int | None) -> int | None:
    for name in dialect.max_tokens_fields:
        value = request.get(name)
        if value is None:
            continue
        if not _is_int(value):
            raise _wrong_type(name, "an integer", value)
        if dialect.strict and value < 1:
            raise _Invalid(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead.",
                name,
                code="integer_below_min_value",
            )
        return value if value > 0 else None  # llama.cpp's -1 and Ollama's 0: no limit
    return default


def _stop(dialect: Dialect, request: Mapping[str, Any]) -> tuple[str, ...]:
    stop = request.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        if dialect.stop_must_be_list:
            raise _Invalid(
                "Failed to deserialize the JSON body into the target type: stop: invalid type: "
                f"string {stop!r}, expected a sequence",
                body=True,
            )
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    if dialect.strict and len(stop) > MAX_STOP_SEQUENCES:
        raise _Invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length "
            f"{MAX_STOP_SEQUENCES}, but got an array with length {len(stop)} instead.",
            "stop",
            code="array_above_max_length",
        )
    return tuple(stop)


def _options(
    dialect: Dialect, call: Call, request: Mapping[str, Any], *, default_max: int | None
) -> _Options:
    model = _model(dialect, call, request, check=True)
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    stream_options = request.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise _wrong_type("stream_options", "an object", stream_options)
    if dialect.strict and stream_options is not None and not stream:
        raise _Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            code="invalid_value",
        )
    include_usage = bool(stream_options and stream_options.get("include_usage"))
    seed = request.get("seed")
    if seed is not None and not _is_int(seed):
        raise _wrong_type("seed", "an integer", seed)
    n = request.get("n")
    if n is not None and n != 1 and dialect.rejects_n:
        raise _Invalid(
            f"This mock generates one choice per request: 'n' must be 1, got {n!r}.", "n",
            code="invalid_value",
        )
    return _Options(
        model=model,
        max_tokens=_max_tokens(dialect, request, default_max),
        stop=_stop(dialect, request),
        seed=seed,
        stream=bool(stream),
        include_usage=include_usage,
    )


_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


def _messages(dialect: Dialect, request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = request.get("messages")
    if messages is None:
        raise _Invalid(dialect.missing_messages, "messages", body=True)
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise _Invalid(
            dialect.empty_messages, "messages", status=dialect.body_status, code="empty_array"
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _Invalid(f"Missing required parameter: '{where}.role'.", f"{where}.role",
                           code="missing_required_parameter")
        if not isinstance(role, str):
            raise _wrong_type(f"{where}.role", "a string", role)
        if dialect.strict and role not in _ROLES:
            raise _Invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                f"{where}.role",
                code="invalid_value",
            )
    return messages


def _prompt(dialect: Dialect, request: Mapping[str, Any]) -> tuple[str, int]:
    """The prompt key and prompt token count of a legacy completions request."""
    prompt = request.get("prompt")
    if prompt is None:
        if dialect.missing_prompt is None:
            return "", 0
        raise _Invalid(dialect.missing_prompt, "prompt", body=True)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one is that prompt
    if isinstance(prompt, str):
        return prompt, generation.count_tokens(prompt)
    if dialect.prompt_string_only:
        raise _Invalid(
            f"json: cannot unmarshal {'array' if isinstance(prompt, list) else 'value'} into Go "
            "struct field CompletionRequest.prompt of type string"
        )
    if isinstance(prompt, list) and prompt and all(map(_is_int, prompt)):
        return " ".join(map(str, prompt)), len(prompt)  # a token-id prompt
    raise _Invalid(
        "This mock completes one prompt per request: send 'prompt' as a string or one array of "
        "token ids.",
        "prompt",
        code="invalid_value",
    )


# --- reply building -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    id: str
    created: int
    model: str
    include_usage: bool


def _context(dialect: Dialect, call: Call, model: str, include_usage: bool, chat: bool) -> _Context:
    canonical = json.dumps(call.json, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.blake2b(canonical.encode(), digest_size=24).digest()
    make_id = dialect.chat_id if chat else dialect.completion_id
    created = MODEL_CREATED + int.from_bytes(digest[-4:], "big") % CREATED_SPAN
    return _Context(make_id(digest), created, model, include_usage)


def _finish_reason(dialect: Dialect, gen: generation.Generation) -> str:
    return dialect.stop_sequence_finish if gen.stopped_by else gen.finish_reason


def _usage(dialect: Dialect, gen: generation.Generation) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }
    if dialect.usage_details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


def llamacpp_timings(prompt_tokens: int, predicted_tokens: int) -> dict[str, float]:
    """Deterministic stand-ins for llama.cpp's measured ``timings`` (floating milliseconds)."""
    prompt_ms = 0.5 + 0.75 * prompt_tokens
    predicted_ms = 12.5 * predicted_tokens
    return {
        "cache_n": 0,
        "prompt_n": prompt_tokens,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / prompt_tokens if prompt_tokens else 0.0,
        "prompt_per_second": 1000.0 * prompt_tokens / prompt_ms,
        "predicted_n": predicted_tokens,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": 12.5 if predicted_tokens else 0.0,
        "predicted_per_second": 80.0 if predicted_tokens else 0.0,
    }


def _envelope(dialect: Dialect, ctx: _Context, object_name: str) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "id": ctx.id,
        "object": object_name,
        "created": ctx.created,
        "model": ctx.model,
    }
    if dialect.system_fingerprint is not None:
        envelope["system_fingerprint"] = dialect.system_fingerprint
    return envelope


def _chat_body(dialect: Dialect, ctx: _Context, gen: generation.Generation) -> dict[str, Any]:
    message = {"role": "assistant", "content": gen.text, **dialect.message_extras}
    choice: dict[str, Any] = {"index": 0, "message": message}
    if dialect.chat_logprobs:
        choice["logprobs"] = None
    choice["finish_reason"] = _finish_reason(dialect, gen)
    body = _envelope(dialect, ctx, "chat.completion")
    body["choices"] = [choice]
    body["usage"] = _usage(dialect, gen)
    body.update(dialect.response_extras)
    if dialect.timings:
        body["timings"] = llamacpp_timings(gen.prompt_tokens, gen.completion_tokens)
    return body


def _completion_body(
    dialect: Dialect, ctx: _Context, gen: generation.Generation
) -> dict[str, Any]:
    choice: dict[str, Any] = {"text": gen.text, "index": 0}
    if dialect.completion_logprobs:
        choice["logprobs"] = None
    choice["finish_reason"] = _finish_reason(dialect, gen)
    body = _envelope(dialect, ctx, "text_completion")
    body["choices"] = [choice]
    body["usage"] = _usage(dialect, gen)
    if dialect.timings:
        body["timings"] = llamacpp_timings(gen.prompt_tokens, gen.completion_tokens)
    return body


class _ChunkMaker:
    """Builds the chunks of one stream: the envelope, and ``usage: null`` where due."""

    def __init__(self, dialect: Dialect, ctx: _Context, object_name: str, logprobs: bool) -> None:
        self.envelope = _envelope(dialect, ctx, object_name)
        self.logprobs = logprobs
        self.usage_null = dialect.usage_null == "always" or (
            dialect.usage_null == "requested" and ctx.include_usage
        )

    def choice_chunk(self, choice: dict[str, Any], finish: str | None) -> dict[str, Any]:
        if self.logprobs:
            choice["logprobs"] = None
        choice["finish_reason"] = finish
        chunk = {**self.envelope, "choices": [choice]}
        if self.usage_null:
            chunk["usage"] = None
        return chunk

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        return {**self.envelope, "choices": [], "usage": usage}


def _stream(dialect: Dialect, chunks: list[dict[str, Any]]) -> StreamReply:
    frames = [sse_frame(chunk) for chunk in chunks]
    frames.append(DONE_FRAME)
    return StreamReply(frames, content_type=dialect.sse_content_type)


def _chat_stream(dialect: Dialect, ctx: _Context, gen: generation.Generation) -> StreamReply:
    maker = _ChunkMaker(dialect, ctx, "chat.completion.chunk", dialect.chat_logprobs)
    finish = _finish_reason(dialect, gen)
    chunks = []
    if dialect.role_chunk_content is not False:
        role = {"role": "assistant", "content": dialect.role_chunk_content}
        chunks.append(maker.choice_chunk({"index": 0, "delta": role}, None))
    # TGI sends a "length" (or stop-sequence) finish on the last token's own event.
    finish_rides_last = dialect.finish_on_last_token and finish != "stop" and gen.tokens
    last = len(gen.tokens) - 1
    for position, token in enumerate(gen.tokens):
        delta = {"role": "assistant", "content": token} if dialect.role_on_every_delta else {
            "content": token
        }
        token_finish = finish if finish_rides_last and position == last else None
        chunks.append(maker.choice_chunk({"index": 0, "delta": delta}, token_finish))
    if not finish_rides_last:
        chunks.append(maker.choice_chunk({"index": 0, "delta": dict(dialect.finish_delta)}, finish))
    if ctx.include_usage:
        chunks.append(maker.usage_chunk(_usage(dialect, gen)))
    if dialect.timings:
        chunks[-1]["timings"] = llamacpp_timings(gen.prompt_tokens, gen.completion_tokens)
    return _stream(dialect, chunks)


def _completion_stream(
    dialect: Dialect, ctx: _Context, gen: generation.Generation
) -> StreamReply:
    maker = _ChunkMaker(dialect, ctx, "text_completion", dialect.completion_logprobs)
    finish = _finish_reason(dialect, gen)
    finish_rides_last = dialect.finish_on_last_token and finish != "stop" and gen.tokens
    last = len(gen.tokens) - 1
    chunks = []
    for position, token in enumerate(gen.tokens):
        token_finish = finish if finish_rides_last and position == last else None
        chunks.append(maker.choice_chunk({"text": token, "index": 0}, token_finish))
    if not finish_rides_last:
        chunks.append(maker.choice_chunk({"text": "", "index": 0}, finish))
    usage = _usage(dialect, gen)
    if dialect.completion_final_usage:
        chunks[-1]["usage"] = usage
    elif ctx.include_usage:
        chunks.append(maker.usage_chunk(usage))
    if dialect.timings:
        chunks[-1]["timings"] = llamacpp_timings(gen.prompt_tokens, gen.completion_tokens)
    return _stream(dialect, chunks)


# --- handlers -------------------------------------------------------------------------------


def _guarded(dialect: Dialect, call: Call, answer: Callable[[], Reply]) -> Reply:
    try:
        return answer()
    except _NotJson:
        return dialect.not_json(call.body)
    except _Invalid as problem:
        return problem.reply(dialect)


def chat_completions(dialect: Dialect, call: Call) -> Reply:
    def answer() -> Reply:
        request = _request_object(dialect, call)
        messages = _messages(dialect, request)
        options = _options(dialect, call, request, default_max=None)
        gen = call.generate(
            options.model,
            generation.chat_key(messages),
            prompt_tokens=generation.chat_prompt_tokens(messages),
            seed=options.seed,
            max_tokens=options.max_tokens,
            stop=options.stop,
        )
        ctx = _context(dialect, call, options.model, options.include_usage, chat=True)
        if options.stream:
            return _chat_stream(dialect, ctx, gen)
        return JsonReply(200, _chat_body(dialect, ctx, gen), content_type=dialect.json_content_type)

    return _guarded(dialect, call, answer)


def completions(dialect: Dialect, call: Call) -> Reply:
    def answer() -> Reply:
        request = _request_object(dialect, call)
        key, prompt_tokens = _prompt(dialect, request)
        options = _options(
            dialect, call, request, default_max=dialect.completion_max_tokens_default
        )
        gen = call.generate(
            options.model,
            key,
            prompt_tokens=prompt_tokens,
            seed=options.seed,
            max_tokens=options.max_tokens,
            stop=options.stop,
        )
        ctx = _context(dialect, call, options.model, options.include_usage, chat=False)
        if options.stream:
            return _completion_stream(dialect, ctx, gen)
        body = _completion_body(dialect, ctx, gen)
        return JsonReply(200, body, content_type=dialect.json_content_type)

    return _guarded(dialect, call, answer)


def list_models(dialect: Dialect, call: Call) -> Reply:
    return JsonReply(200, dialect.list_models(call), content_type=dialect.json_content_type)


def retrieve_model(dialect: Dialect, call: Call) -> Reply:
    requested = call.match_info.get("model", "")
    if dialect.model_matcher(call.settings.models, requested) is None:
        return dialect.error(404, dialect.model_not_found(requested), code="model_not_found")
    entry = _model_entry(dialect.shown_model(requested), dialect.owned_by or requested)
    return JsonReply(200, entry, content_type=dialect.json_content_type)


def embedding_vector(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector for ``text``; a shorter one is a prefix, renormalised."""
    raw = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    values = [v / 32767.5 - 1.0 for v in struct.unpack(f"<{dimensions}H", raw)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    # Round-trip through float32, the precision the base64 encoding carries.
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def _embedding_inputs(request: Mapping[str, Any]) -> list[str]:
    given = request.get("input")
    if given is None:
        raise _Invalid("'input' is a required property", "input")
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given:
        if all(map(_is_int, given)):
            return [" ".join(map(str, given))]  # one input as token ids
        if all(isinstance(item, str) for item in given):
            return list(given)
        if all(isinstance(item, list) and item and all(map(_is_int, item)) for item in given):
            return [" ".join(map(str, item)) for item in given]
    raise _wrong_type("input", "a string, an array of strings or token arrays", given)


def embeddings(dialect: Dialect, call: Call) -> Reply:
    def answer() -> Reply:
        request = _request_object(dialect, call)
        model = _model(dialect, call, request, check=False)
        inputs = _embedding_inputs(request)
        dimensions = request.get("dimensions", EMBEDDING_DIMENSIONS)
        if not _is_int(dimensions) or dimensions < 1:
            raise _Invalid(
                f"Invalid 'dimensions': expected a positive integer, got {dimensions!r}.",
                "dimensions",
                code="invalid_value",
            )
        encoding = request.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise _Invalid(
                f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
                "encoding_format",
                code="invalid_value",
            )
        data = []
        for index, text in enumerate(inputs):
            vector: Any = embedding_vector(text, dimensions)
            if encoding == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(generation.count_tokens(text) for text in inputs)
        body = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return JsonReply(200, body, content_type=dialect.json_content_type)

    return _guarded(dialect, call, answer)


def _bind(dialect: Dialect, function: Callable[[Dialect, Call], Reply]) -> Handler:
    def handler(call: Call) -> Reply:
        return function(dialect, call)

    handler.__name__ = f"{dialect.name}_{function.__name__}"
    handler.stream_error = dialect.stream_error  # type: ignore[attr-defined]
    return handler


def routes(dialect: Dialect) -> tuple[Route, ...]:
    """The ``/v1/*`` routes of ``dialect`` (plus its path aliases), ready for ``MockKind``."""
    table = [
        Route("POST", "/v1/chat/completions", _bind(dialect, chat_completions)),
        Route("POST", "/v1/completions", _bind(dialect, completions)),
        Route("GET", "/v1/models", _bind(dialect, list_models), public=dialect.models_public),
    ]
    if dialect.retrieve_model:
        table.append(
            Route(
                "GET",
                "/v1/models/{model:.+}",
                _bind(dialect, retrieve_model),
                public=dialect.models_public,
            )
        )
    if dialect.embeddings:
        table.append(Route("POST", "/v1/embeddings", _bind(dialect, embeddings)))
    by_path = {route.path: route for route in table}
    for original, alias in dialect.aliases:
        route = by_path[original]
        table.append(Route(route.method, alias, route.handler, route.public))
    return tuple(table)
