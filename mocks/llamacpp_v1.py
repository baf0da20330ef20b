"""llama.cpp's OpenAI-compatible dialect (``server.cpp``/``utils.hpp`` at c392e509): ``/v1/*``
and its aliases.

One served model whatever the request names, lenient reading (``n_predict`` counts too), its own
error bodies, ``timings`` on the final chunk and the whole reply, and a public model list that
also carries an Ollama-style ``models`` array.
"""

from __future__ import annotations

from typing import Any

from . import llamacpp_request
from .base import Call
from .llamacpp_timings import timings
from .openai_compat_dialect import (
    Dialect,
    Errors,
    Models,
    Replies,
    Requests,
    Streaming,
    alphanumeric,
)

_META = {
    "vocab_type": 1,
    "n_vocab": 32000,
    "n_ctx_train": 4096,
    "n_embd": 4096,
    "n_params": 6_738_415_616,
    "size": 3_825_065_984,
}


def _model_list(call: Call) -> Any:
    model = call.settings.models[0]
    entry = {**DIALECT.model_entry(model), "meta": _META}
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


def _chat_id(digest: bytes) -> str:
    return "chatcmpl-" + alphanumeric(digest, 32)  # legacy completions' ids too


DIALECT = Dialect(
    name="llamacpp",
    requests=Requests(
        strict=False,
        serves_one_model=True,
        max_tokens_fields=("n_predict", "max_completion_tokens", "max_tokens"),
        completion_max_tokens=None,
        empty_messages_ok=True,  # the template renders no turns; the reply is a 200
    ),
    errors=Errors(
        build=lambda status, message, param, code: llamacpp_request.error(status, message),
        not_json=llamacpp_request.not_json,
        # oaicompat_completion_params_parse runs outside handle_completions_impl's try, so what
        # it throws reaches the server's exception handler: a 500 server_error.
        body_status=500,
        missing_messages="[json.exception.out_of_range.403] key 'messages' not found",
        missing_prompt='"prompt" is required',
        only_one_choice=lambda n: "Only one completion choice is allowed",
        only_one_choice_status=500,
    ),
    replies=Replies(
        content_type=llamacpp_request.JSON_UTF8,
        system_fingerprint=llamacpp_request.BUILD_INFO,
        chat_id=_chat_id,
        completion_id=_chat_id,
        chat_logprobs=False,
        usage_details=False,
        timings=timings,
        message_extras={},
        response_extras={},
    ),
    stream=Streaming(
        content_type="text/event-stream",
        # At b4748 a partial result's "first" test (n_decoded == 0) never holds, since the
        # token is counted before it is sent: the stream opens with content, no role chunk.
        role_chunk_content=False,
        usage_null="never",
        final_usage=True,
    ),
    models=Models(owned_by="llamacpp", listing=_model_list, public=True, retrievable=False),
    aliases=(("/v1/chat/completions", "/chat/completions"), ("/v1/models", "/models")),
)
