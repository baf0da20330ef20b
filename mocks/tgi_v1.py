"""TGI's Messages API under ``/v1`` (``router/src/server.rs``, ``chat.rs``): the HuggingFace
mock's dialect and the endpoints where TGI departs from the shared OpenAI-compatible handlers.

TGI 3.3.6 serves one model whatever the request names, rejects bodies of the wrong shape with
axum's plain-text 422 (serde's ``missing field `messages` at line 1 column N``, N being the
closing brace's column), sends its own flat error bodies, puts a ``length`` finish on the last
token's chunk, and has no embeddings.

Its ``/v1/completions`` stream is not OpenAI's (server.rs ``completions``): every token is a
``Chunk`` with ``finish_reason: ""`` and no ``usage``; the generation's last token (the ``</s>`` of
a reply that ended before the limit, its text unfiltered) is a ``CompletionFinal`` carrying
TGI's own finish reason (``eos_token``, ``length``, ``stop_sequence``: ``FinishReason``'s Display,
not ``format(true)``) and the usage; then ``[DONE]``. Both are tagged ``"object":
"text_completion"``. The non-streamed reply maps ``eos_token`` to ``stop``.

``POST /models/{id}/v1/chat/completions`` is the HF Inference API's route to a hosted TGI (what
``huggingface_hub.InferenceClient(model=<url>/models/<id>).chat_completion`` calls): the same
Messages API, for the model the path names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import generation, openai_compat, tgi_request
from .base import BytesReply, Call, Endpoint, Reply, StreamReply, sse_frame
from .openai_compat_dialect import Dialect, Errors, Models, Replies, Requests, Streaming
from .openai_compat_reply import DONE_FRAME, reply_context
from .openai_compat_request import read_object, read_options, read_prompt

VERSION = "3.3.6"
SHA = "db931fcf42da018a3657580c64bf2720f167f9ab"  # the v3.3.6 tag
DOCKER_LABEL = "sha-db931fc"  # the official image's label: "sha-" and the short commit
# server.rs: format!("{}-{}", info.version, info.docker_label.unwrap_or("native"))
SYSTEM_FINGERPRINT = f"{VERSION}-{DOCKER_LABEL}"
EOS_TOKEN = (2, "</s>")

# The two texts below are replaced by ``_missing_field`` (it knows the body); they stand for the
# shared handlers' own checks.
_MISSING = (
    "Failed to deserialize the JSON body into the target type: missing field `{}` "
    "at line 1 column 2"
)

DIALECT = Dialect(
    name="tgi",
    requests=Requests(
        strict=False,
        serves_one_model=True,
        completion_max_tokens=None,
        stop_must_be_list=True,
        rejects_n=False,
    ),
    errors=Errors(
        build=lambda status, message, param, code: tgi_request.error(status, message),
        not_json=tgi_request.not_json,
        reject_body=tgi_request.rejection,
        body_status=422,
        missing_messages=_MISSING.format("messages"),
        empty_messages="Input validation error: `inputs` cannot be empty",
        missing_prompt=_MISSING.format("prompt"),
    ),
    replies=Replies(
        system_fingerprint=SYSTEM_FINGERPRINT,
        chat_id=lambda digest: "",
        completion_id=lambda digest: "",
        usage_details=False,
        stop_sequence_finish="stop_sequence",
        completion_tokens=tgi_request.generated_tokens,
        message_extras={},
        response_extras={},
    ),
    stream=Streaming(
        content_type="text/event-stream",
        role_chunk_content=False,
        role_on_every_delta=True,
        finish_delta={"role": "assistant", "content": ""},
        finish_on_last_token=True,
        usage_null="always",
        error_body=lambda message: {"error": {"message": message, "http_status_code": 500}},
    ),
    models=Models(owned_by=None, created=0, public=True, retrievable=False),
    embeddings=None,
)


def _missing_field(call: Call, name: str) -> BytesReply | None:
    """axum's 422 when a JSON object lacks the struct's required field ``name``."""
    if isinstance(call.json, dict) and name not in call.json:
        return tgi_request.missing_field(name, call.body)
    return None


def chat_completions(call: Call) -> Reply:
    return _missing_field(call, "messages") or openai_compat.chat_completions(DIALECT, call)


def hosted_chat_completions(call: Call) -> Reply:
    """The Inference API's ``/models/{id}/v1/chat/completions``: the model its path names."""
    model = call.match_info.get("model_id") or call.settings.models[0]
    settings = dataclasses.replace(call.settings, models=(model,))
    inner = dataclasses.replace(call, settings=settings)
    try:
        return chat_completions(inner)
    finally:
        call.generated = inner.generated  # the pipeline applies latency to generations


def _finish(gen: generation.Generation) -> str:
    """``FinishReason``'s Display: TGI's own names."""
    if gen.finish_reason == "length":
        return "length"
    return "stop_sequence" if gen.stopped_by else "eos_token"


def completion_stream(call: Call, request: dict[str, Any]) -> Reply:
    """TGI's ``/v1/completions`` SSE: ``Chunk`` per token, ``CompletionFinal`` last, ``[DONE]``."""
    key, prompt_tokens = read_prompt(DIALECT, request)
    options = read_options(DIALECT, call, request, default_max=None)
    gen = call.generate(
        options.model, key, prompt_tokens=prompt_tokens, seed=options.seed,
        max_tokens=options.max_tokens, stop=options.stop,
    )
    ctx = reply_context(DIALECT, call, options, chat=False)
    texts = list(gen.tokens)
    if gen.finish_reason != "length" or not texts:
        texts.append(EOS_TOKEN[1])  # the End event is the </s> token
    frames = []
    for text in texts[:-1]:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": ""}
        frames.append(sse_frame({
            "object": "text_completion", "id": "", "created": ctx.created, "choices": [choice],
            "model": ctx.model, "system_fingerprint": SYSTEM_FINGERPRINT,
        }))
    generated = tgi_request.generated_tokens(gen)
    usage = {"prompt_tokens": gen.prompt_tokens, "completion_tokens": generated,
             "total_tokens": gen.prompt_tokens + generated}
    final = {"index": 0, "text": texts[-1], "logprobs": None, "finish_reason": _finish(gen)}
    frames.append(sse_frame({
        "object": "text_completion", "id": "", "created": ctx.created, "model": ctx.model,
        "system_fingerprint": SYSTEM_FINGERPRINT, "choices": [final], "usage": usage,
    }))
    frames.append(DONE_FRAME)
    headers = {"x-compute-type": "gpu+optimized", "x-accel-buffering": "no",
               "x-compute-characters": str(len(key))}
    return StreamReply(frames, content_type=DIALECT.stream.content_type, headers=headers)


def completions(call: Call) -> Reply:
    missing = _missing_field(call, "prompt")
    if missing is not None:
        return missing
    if isinstance(call.json, dict) and call.json.get("stream") is True:
        return _streamed_completions(DIALECT, call)
    return openai_compat.completions(DIALECT, call)


@openai_compat._guarded
def _streamed_completions(dialect: Dialect, call: Call) -> Reply:
    return completion_stream(call, read_object(call))


def endpoints() -> tuple[Endpoint, ...]:
    """TGI's ``/v1`` routes: the shared handlers where TGI answers as OpenAI does, its own where
    it does not."""
    own = {
        ("POST", "/v1/chat/completions"): chat_completions,
        ("POST", "/v1/completions"): completions,
    }
    return tuple(
        dataclasses.replace(entry, handler=own.get((entry.method, entry.path), entry.handler))
        for entry in openai_compat.endpoints(DIALECT)
    )


def hosted_endpoints() -> tuple[Endpoint, ...]:
    """The Inference API's per-model Messages API (list it before ``/models/{model_id:.+}``)."""
    (chat,) = [e for e in endpoints() if e.path == "/v1/chat/completions"]
    path = "/models/{model_id:.+}/v1/chat/completions"
    return (dataclasses.replace(chat, path=path, handler=hosted_chat_completions),)
