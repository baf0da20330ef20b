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
- ``n`` choices where the dialect honours ``n`` (OpenAI: 1 to 128; choice 0 is the reply to
  ``n: 1``, the others vary the prompt key; streamed one choice after another). Elsewhere ``n``
  other than 1 is refused in the server's words, or silently ignored where the server ignores it.
  Several prompts in one completions request are refused.
- Embeddings accept any model name: a vector is a function of the input text and the dimension
  only (unit length; texts sharing words are close, ``word_vectors``). Ollama's are those of its
  ``/api/embed``.

Each endpoint carries the dialect's mid-stream error frame (``Endpoint.stream_error``): Ollama's
native routes speak NDJSON, its ``/v1`` ones SSE.
"""

from __future__ import annotations

import base64
import functools
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import generation
from .base import Call, Endpoint, Handler, JsonReply, Reply
from .openai_compat_dialect import Dialect
from .openai_compat_reply import chat_stream, completion_stream, reply_context, whole
from .openai_compat_request import (
    Invalid,
    NotJson,
    Options,
    read_embedding_inputs,
    read_embedding_size,
    read_messages,
    read_model,
    read_object,
    read_options,
    read_prompt,
)


def _guarded(handler: Callable[[Dialect, Call], Reply]) -> Callable[[Dialect, Call], Reply]:
    """The handler, with the request errors it raises answered in the dialect's words."""

    @functools.wraps(handler)
    def guarded(dialect: Dialect, call: Call) -> Reply:
        try:
            return handler(dialect, call)
        except NotJson:
            return dialect.errors.not_json(call.body)
        except Invalid as problem:
            return problem.reply(dialect)

    return guarded


def _generations(
    call: Call, options: Options, key: str, prompt_tokens: int
) -> list[generation.Generation]:
    """One generation per choice: the first is the reply to ``n: 1``, the others vary the key."""
    return [
        call.generate(
            options.model,
            key if index == 0 else f"{key}\0choice {index}",
            prompt_tokens=prompt_tokens,
            seed=options.seed,
            max_tokens=options.max_tokens,
            stop=options.stop,
        )
        for index in range(options.n)
    ]


@_guarded
def chat_completions(dialect: Dialect, call: Call) -> Reply:
    request = read_object(call)
    messages = read_messages(dialect, request)
    options = read_options(dialect, call, request, default_max=None)
    gens = _generations(call, options, generation.chat_key(messages),
                        generation.chat_prompt_tokens(messages))
    ctx = reply_context(dialect, call, options, chat=True)
    if options.stream:
        return chat_stream(dialect, ctx, gens)
    choices = [
        {"index": index,
         "message": {"role": "assistant", "content": gen.text, **dialect.replies.message_extras}}
        for index, gen in enumerate(gens)
    ]
    return whole(
        dialect, ctx, gens, "chat.completion", choices,
        logprobs=dialect.replies.chat_logprobs, extras=dialect.replies.response_extras,
    )


@_guarded
def completions(dialect: Dialect, call: Call) -> Reply:
    request = read_object(call)
    key, prompt_tokens = read_prompt(dialect, request)
    default_max = dialect.requests.completion_max_tokens
    options = read_options(dialect, call, request, default_max=default_max)
    gens = _generations(call, options, key, prompt_tokens)
    ctx = reply_context(dialect, call, options, chat=False)
    if options.stream:
        return completion_stream(dialect, ctx, gens)
    choices = [{"text": gen.text, "index": index} for index, gen in enumerate(gens)]
    return whole(
        dialect, ctx, gens, "text_completion", choices,
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
        message = dialect.errors.model_not_found(requested, call.path)
        return dialect.error(404, message, code="model_not_found")
    return JsonReply(200, dialect.model_entry(requested), content_type=dialect.replies.content_type)


@_guarded
def embeddings(dialect: Dialect, call: Call) -> Reply:
    request = read_object(call)
    model = read_model(dialect, call, request, check=dialect.requests.embedding_model_checked)
    inputs = read_embedding_inputs(request)
    dimensions = read_embedding_size(dialect, request)
    encoding = request.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise Invalid(
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
