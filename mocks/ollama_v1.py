"""Ollama's OpenAI-compatible ``/v1/*`` dialect (``openai/openai.go`` and its middleware).

Lenient where OpenAI is strict (no role or limit checks, ``n`` ignored), Ollama's model names
(``llama2`` is ``llama2:latest``), gin's content type, and ``openai.NewError`` error bodies.
"""

from __future__ import annotations

from collections.abc import Callable

from . import ollama_request
from .base import JsonReply, Reply
from .openai_compat_dialect import (
    Dialect,
    Embeddings,
    Errors,
    Models,
    Replies,
    Requests,
    Streaming,
)

# Errors the native handler answers (not the /v1 middleware): ChatWriter.writeError re-wraps them
# with openai.NewError(http.StatusInternalServerError, ...), so their type is "api_error" whatever
# the status, and it sets "Content-Type: application/json" itself (middleware/openai.go, v0.11.4).
_HANDLER_400S = frozenset({"model is required"})


def error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JsonReply:
    """Ollama's ``openai.NewError``: the OpenAI shape, ``param``/``code`` null. The middleware's
    own refusals (a body it cannot bind) are typed by status; what the native handler refuses
    (an unknown model, a missing one) passes through ``writeError``: ``api_error``."""
    from_handler = status == 404 or status >= 500 or message in _HANDLER_400S
    if from_handler:
        kind, content_type = "api_error", "application/json"
    else:
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        content_type = ollama_request.GIN_JSON
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JsonReply(status, body, content_type=content_type)


def _not_json(body: bytes) -> Reply:
    return error(400, ollama_request.syntax_error(body))


def _short_id(prefix: str) -> Callable[[bytes], str]:
    return lambda digest: f"{prefix}{int.from_bytes(digest[:4], 'big') % 999}"


def _model_not_found(model: str, path: str) -> str:
    """Each /v1 route is a native handler behind a middleware, in that handler's words: chat and
    embeddings schedule a runner first (handleScheduleError); completions (GenerateHandler) and
    model retrieval (ShowHandler) look the model up."""
    if path.endswith(("/chat/completions", "/embeddings")):
        return f"model {ollama_request.go_quote(model)} not found, try pulling it first"
    return f"model '{model}' not found"


DIALECT = Dialect(
    name="ollama",
    requests=Requests(
        strict=False,
        model_matcher=ollama_request.resolve_model,
        max_tokens_fields=("max_tokens",),
        completion_max_tokens=None,
        rejects_n=False,
        prompt_required=False,
        prompt_string_only=True,
        embedding_model_checked=True,
    ),
    errors=Errors(
        build=error,
        not_json=_not_json,
        missing_model="model is required",
        missing_messages="[] is too short - 'messages'",
        empty_messages="[] is too short - 'messages'",
        model_not_found=_model_not_found,
    ),
    replies=Replies(
        content_type=ollama_request.GIN_JSON,
        system_fingerprint="fp_ollama",
        chat_id=_short_id("chatcmpl-"),
        completion_id=_short_id("cmpl-"),
        chat_logprobs=False,
        completion_logprobs=False,
        usage_details=False,
        message_extras={},
        response_extras={},
    ),
    stream=Streaming(
        content_type="text/event-stream",
        role_chunk_content=False,
        role_on_every_delta=True,
        finish_delta={"role": "assistant", "content": ""},
        usage_null="never",
    ),
    models=Models(owned_by="library", shown=ollama_request.tagged),
    embeddings=Embeddings(
        dimensions=ollama_request.EMBEDDING_SIZE, fit=ollama_request.embedding_size
    ),
)
