"""The OpenAI-style mock: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``,
``/v1/models/{model}`` and ``/v1/embeddings`` in the OpenAI API's own dialect (what a self-hosted
GGUF server behind an OpenAI-compatible front presents, and what openai-python expects).

Auth follows api.openai.com: with ``settings.api_key`` set, every route wants
``Authorization: Bearer <key>``; a missing key and a wrong key get different 401 messages, and a
wrong key is shown masked (``sk-****ab``), never whole.
"""

from __future__ import annotations

from . import openai_compat
from .base import Call, MockKind, Reply
from .openai_compat_dialect import Dialect, Requests, openai_error

# The defaults are the OpenAI API's own; ``n`` is honoured from 1 to 128 (openai-openapi
# f85dbe2, API 2.3.0: CreateChatCompletionRequest/CreateCompletionRequest ``n``).
DIALECT = Dialect(name="openai", requests=Requests(n_max=128))

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)


def masked_key(key: str) -> str:
    """The key as OpenAI echoes a wrong one: first 3 and last 2 characters; short keys hidden."""
    if len(key) < 10:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 5) + key[-2:]


def _presented_key(call: Call) -> str | None:
    header = call.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def unauthorized(call: Call) -> Reply:
    key = _presented_key(call)
    if key is None:
        return openai_error(401, _NO_KEY)
    return openai_error(
        401,
        f"Incorrect API key provided: {masked_key(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def not_found(call: Call) -> Reply:
    return openai_error(404, f"Invalid URL ({call.method} {call.path})")


def loading(call: Call, estimated_time: float) -> Reply:
    # api.openai.com has no loading state; an OpenAI-style GGUF server warming up answers 503.
    reply = openai_error(
        503,
        f"The model is loading; please try again in {estimated_time:g} seconds.",
        code="model_loading",
    )
    reply.headers["Retry-After"] = str(max(1, round(estimated_time)))
    return reply


KIND = MockKind(
    name="openai",
    default_port=8082,
    endpoints=openai_compat.endpoints(DIALECT),
    unauthorized=unauthorized,
    not_found=not_found,
    error=openai_error,
    loading=loading,
    stream_error=DIALECT.stream_error,
    description="OpenAI-style server: /v1/chat/completions, /v1/completions, /v1/models, "
    "/v1/embeddings",
)
