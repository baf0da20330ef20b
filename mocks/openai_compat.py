"""OpenAI-compatible endpoints (chat, legacy completions, models, embeddings) as pure handlers.

One implementation serves four servers. What differs between them is data, a ``Dialect``
(``openai_compat_dialect``), and each server's lives with that server: the OpenAI API's own
(``openai``), Ollama's ``/v1/*`` (``ollama_v1``), llama.cpp's (``llamacpp_v1``) and TGI's Messages
API (``tgi_v1``). This layer knows no server: it imports none of their modules.

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
  only (unit length; similar texts are not close). Ollama's are those of its ``/api/embed``.

Each endpoint carries the dialect's mid-stream error frame (``Endpoint.stream_error``): Ollama's
native routes speak NDJSON, its ``/v1`` ones SSE.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import generation
from .base import NOT_JSON, Call, Endpoint, Handler, JsonReply, Reply, StreamReply, sse_frame
from .openai_compat_dialect import MODEL_CREATED, Dialect

CREATED_SPAN = 31_536_000  # replies are "created" within a year after MODEL_CREATED
MAX_STOP_SEQUENCES = 4
DONE_FRAME = sse_frame("[DONE]")
# The request digest's encoding: key order and spacing must not change a reply.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
            return dialect.rejected_body(dialect.errors.body_status, self.message)
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


def _request_object(call: Call) -> dict[str, Any]:
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
    if dialect.requests.serves_one_model:
        return call.settings.models[0]
    requested = request.get("model")
    if requested is None or requested == "":
        raise _Invalid(dialect.errors.missing_model, "model")
    if not isinstance(requested, str):
        raise _wrong_type("model", "a string", requested)
    if check and dialect.requests.model_matcher(call.settings.models, requested) is None:
        message = dialect.errors.model_not_found(requested)
        raise _Invalid(message, status=404, code="model_not_found")
    return requested


def _max_tokens(dialect: Dialect, request: Mapping[str, Any], default: int | None) -> int | None:
    for name in dialect.requests.max_tokens_fields:
        value = request.get(name)
        if value is None:
            continue
        if not _is_int(value):
            raise _wrong_type(name, "an integer", value)
        if dialect.requests.strict and value < 1:
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
        if dialect.requests.stop_must_be_list:
            raise _Invalid(
                "Failed to deserialize the JSON body into the target type: stop: invalid type: "
                f"string {stop!r}, expected a sequence",
                body=True,
            )
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    if dialect.requests.strict and len(stop) > MAX_STOP_SEQUENCES:
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
    if dialect.requests.strict and stream_options is not None and not stream:
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
    if n is not None and n != 1 and dialect.requests.rejects_n:
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
        raise _Invalid(dialect.errors.missing_messages, "messages", body=True)
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages:
        errors = dialect.errors
        raise _Invalid(
            errors.empty_messages, "messages", status=errors.body_status, code="empty_array"
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
        if dialect.requests.strict and role not in _ROLES:
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
        if not dialect.requests.prompt_required:
            return "", 0
        raise _Invalid(dialect.errors.missing_prompt, "prompt", body=True)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one is that prompt
    if isinstance(prompt, str):
        return prompt, generation.count_tokens(prompt)
    if dialect.requests.prompt_string_only:
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


def _context(dialect: Dialect, call: Call, options: _Options, *, chat: bool) -> _Context:
    digest = hashlib.blake2b(_CANONICAL.encode(call.json).encode(), digest_size=24).digest()
    make_id = dialect.replies.chat_id if chat else dialect.replies.completion_id
    created = MODEL_CREATED + int.from_bytes(digest[-4:], "big") % CREATED_SPAN
    return _Context(make_id(digest), created, options.model, options.include_usage)


def _finish_reason(dialect: Dialect, gen: generation.Generation) -> str:
    return dialect.replies.stop_sequence_finish if gen.stopped_by else gen.finish_reason


def _usage(dialect: Dialect, gen: generation.Generation) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }
    if dialect.replies.usage_details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


def _envelope(dialect: Dialect, ctx: _Context, object_name: str) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "id": ctx.id,
        "object": object_name,
        "created": ctx.created,
        "model": ctx.model,
    }
    if dialect.replies.system_fingerprint is not None:
        envelope["system_fingerprint"] = dialect.replies.system_fingerprint
    return envelope


def _whole(
    dialect: Dialect, ctx: _Context, gen: generation.Generation, object_name: str,
    choice: dict[str, Any], *, logprobs: bool, extras: Mapping[str, Any],
) -> JsonReply:
    """A non-streamed reply with its one ``choice``."""
    if logprobs:
        choice["logprobs"] = None
    choice["finish_reason"] = _finish_reason(dialect, gen)
    body = _envelope(dialect, ctx, object_name)
    body["choices"] = [choice]
    body["usage"] = _usage(dialect, gen)
    body.update(extras)
    if dialect.replies.timings is not None:
        body["timings"] = dialect.replies.timings(gen.prompt_tokens, gen.completion_tokens)
    return JsonReply(200, body, content_type=dialect.replies.content_type)


class _ChunkMaker:
    """Builds the chunks of one stream: the envelope, and ``usage: null`` where due."""

    def __init__(self, dialect: Dialect, ctx: _Context, object_name: str, logprobs: bool) -> None:
        self.envelope = _envelope(dialect, ctx, object_name)
        self.logprobs = logprobs
        self.usage_null = dialect.stream.usage_null == "always" or (
            dialect.stream.usage_null == "requested" and ctx.include_usage
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


def _choice_chunks(
    dialect: Dialect, gen: generation.Generation, maker: _ChunkMaker,
    piece: Callable[[str], dict[str, Any]], finish_choice: dict[str, Any],
) -> list[dict[str, Any]]:
    """One chunk per token (its choice is ``piece(token)``), and the finish: on a last chunk of
    its own (``finish_choice``), or on the last token's chunk where TGI puts a finish that is not
    a natural end."""
    finish = _finish_reason(dialect, gen)
    rides_last = dialect.stream.finish_on_last_token and finish != "stop" and bool(gen.tokens)
    last = len(gen.tokens) - 1
    chunks = [
        maker.choice_chunk(piece(token), finish if rides_last and position == last else None)
        for position, token in enumerate(gen.tokens)
    ]
    if not rides_last:
        chunks.append(maker.choice_chunk(finish_choice, finish))
    return chunks


def _stream(dialect: Dialect, chunks: list[dict[str, Any]], gen: generation.Generation) -> Reply:
    if dialect.replies.timings is not None:
        chunks[-1]["timings"] = dialect.replies.timings(gen.prompt_tokens, gen.completion_tokens)
    frames = [sse_frame(chunk) for chunk in chunks]
    frames.append(DONE_FRAME)
    return StreamReply(frames, content_type=dialect.stream.content_type)


def _chat_stream(dialect: Dialect, ctx: _Context, gen: generation.Generation) -> Reply:
    maker = _ChunkMaker(dialect, ctx, "chat.completion.chunk", dialect.replies.chat_logprobs)
    every_delta = {"role": "assistant"} if dialect.stream.role_on_every_delta else {}
    chunks = []
    if dialect.stream.role_chunk_content is not False:
        role = {"role": "assistant", "content": dialect.stream.role_chunk_content}
        chunks.append(maker.choice_chunk({"index": 0, "delta": role}, None))
    chunks += _choice_chunks(
        dialect, gen, maker, lambda token: {"index": 0, "delta": {**every_delta, "content": token}},
        {"index": 0, "delta": dict(dialect.stream.finish_delta)},
    )
    if ctx.include_usage:
        chunks.append(maker.usage_chunk(_usage(dialect, gen)))
    return _stream(dialect, chunks, gen)


def _completion_stream(dialect: Dialect, ctx: _Context, gen: generation.Generation) -> Reply:
    maker = _ChunkMaker(dialect, ctx, "text_completion", dialect.replies.completion_logprobs)
    chunks = _choice_chunks(
        dialect, gen, maker, lambda token: {"text": token, "index": 0}, {"text": "", "index": 0}
    )
    if dialect.stream.completion_final_usage:
        chunks[-1]["usage"] = _usage(dialect, gen)
    elif ctx.include_usage:
        chunks.append(maker.usage_chunk(_usage(dialect, gen)))
    return _stream(dialect, chunks, gen)


# --- handlers -------------------------------------------------------------------------------


def _guarded(handler: Callable[[Dialect, Call], Reply]) -> Callable[[Dialect, Call], Reply]:
    """The handler, with the request errors it raises answered in the dialect's words."""

    @functools.wraps(handler)
    def guarded(dialect: Dialect, call: Call) -> Reply:
        try:
            return handler(dialect, call)
        except _NotJson:
            return dialect.errors.not_json(call.body)
        except _Invalid as problem:
            return problem.reply(dialect)

    return guarded


@_guarded
def chat_completions(dialect: Dialect, call: Call) -> Reply:
    request = _request_object(call)
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
    ctx = _context(dialect, call, options, chat=True)
    if options.stream:
        return _chat_stream(dialect, ctx, gen)
    message = {"role": "assistant", "content": gen.text, **dialect.replies.message_extras}
    return _whole(
        dialect, ctx, gen, "chat.completion", {"index": 0, "message": message},
        logprobs=dialect.replies.chat_logprobs, extras=dialect.replies.response_extras,
    )


@_guarded
def completions(dialect: Dialect, call: Call) -> Reply:
    request = _request_object(call)
    key, prompt_tokens = _prompt(dialect, request)
    options = _options(dialect, call, request, default_max=dialect.requests.completion_max_tokens)
    gen = call.generate(
        options.model,
        key,
        prompt_tokens=prompt_tokens,
        seed=options.seed,
        max_tokens=options.max_tokens,
        stop=options.stop,
    )
    ctx = _context(dialect, call, options, chat=False)
    if options.stream:
        return _completion_stream(dialect, ctx, gen)
    return _whole(
        dialect, ctx, gen, "text_completion", {"text": gen.text, "index": 0},
        logprobs=dialect.replies.completion_logprobs, extras={},
    )


def list_models(dialect: Dialect, call: Call) -> Reply:
    if dialect.models.listing is not None:
        body = dialect.models.listing(call)
    else:
        served = call.settings.models
        if dialect.requests.serves_one_model:
            served = served[:1]
        body = {"object": "list", "data": [dialect.model_entry(model) for model in served]}
    return JsonReply(200, body, content_type=dialect.replies.content_type)


def retrieve_model(dialect: Dialect, call: Call) -> Reply:
    requested = call.match_info.get("model", "")
    if dialect.requests.model_matcher(call.settings.models, requested) is None:
        return dialect.error(404, dialect.errors.model_not_found(requested), code="model_not_found")
    return JsonReply(200, dialect.model_entry(requested), content_type=dialect.replies.content_type)


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


def _embedding_size(dialect: Dialect, request: Mapping[str, Any]) -> int:
    assert dialect.embeddings is not None
    if "dimensions" not in request:
        return dialect.embeddings.dimensions
    requested = request["dimensions"]
    fit = dialect.embeddings.fit
    if fit is not None and (requested is None or _is_int(requested)):
        return fit(requested or 0)  # Go: null is the zero value
    if not _is_int(requested) or requested < 1:
        raise _Invalid(
            f"Invalid 'dimensions': expected a positive integer, got {requested!r}.",
            "dimensions",
            code="invalid_value",
        )
    return requested


@_guarded
def embeddings(dialect: Dialect, call: Call) -> Reply:
    request = _request_object(call)
    model = _model(dialect, call, request, check=False)
    inputs = _embedding_inputs(request)
    dimensions = _embedding_size(dialect, request)
    encoding = request.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _Invalid(
            f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
            "encoding_format",
            code="invalid_value",
        )
    data = []
    for index, text in enumerate(inputs):
        vector: Any = generation.embedding_vector(text, dimensions)
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
    return JsonReply(200, body, content_type=dialect.replies.content_type)


def _bind(dialect: Dialect, function: Callable[[Dialect, Call], Reply]) -> Handler:
    def handler(call: Call) -> Reply:
        return function(dialect, call)

    handler.__name__ = f"{dialect.name}_{function.__name__}"
    return handler


def endpoints(dialect: Dialect) -> tuple[Endpoint, ...]:
    """The ``/v1/*`` endpoints of ``dialect`` (plus its path aliases), ready for ``MockKind``.

    Each carries the dialect's SSE error frame: the server's own may be another protocol's."""

    def endpoint(method: str, path: str, function: Callable[[Dialect, Call], Reply],
                 public: bool = False) -> Endpoint:
        return Endpoint(method, path, _bind(dialect, function), public, dialect.stream_error)

    public = dialect.models.public
    table = [
        endpoint("POST", "/v1/chat/completions", chat_completions),
        endpoint("POST", "/v1/completions", completions),
        endpoint("GET", "/v1/models", list_models, public),
    ]
    if dialect.models.retrievable:
        table.append(endpoint("GET", "/v1/models/{model:.+}", retrieve_model, public))
    if dialect.embeddings is not None:
        table.append(endpoint("POST", "/v1/embeddings", embeddings))
    by_path = {entry.path: entry for entry in table}
    table += [replace(by_path[original], path=alias) for original, alias in dialect.aliases]
    return tuple(table)
