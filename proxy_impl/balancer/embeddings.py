"""The embeddings call semantic routing makes: an OpenAI-style ``POST {model, input,
dimensions}`` to ``embeddings.model.options.upstream_url``, as Kong's embeddings driver sends it.

Both reply shapes are read: OpenAI's ``{"data": [{"embedding": [...]}]}`` (OpenAI, Mistral,
llama.cpp, Ollama's ``/v1/embeddings``) and Ollama's own ``{"embeddings": [[...]]}`` (its
``/api/embed`` takes the same request body). Building the request and reading the reply are pure;
``embed`` is the I/O. Errors never quote the credential or the URL's userinfo and query.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from multidict import CIMultiDict, MultiDict
from yarl import URL

from .. import auth
from ..behaviour import FIXED
from ..config import masked_url
from ..http_client import Client, Timeouts, UpstreamError
from ..json_text import json_bytes
from ..model import Embeddings

MAX_REPLY_BYTES = 64 << 20  # a few thousand floats per input; far below this


class EmbeddingsError(Exception):
    """The vectors could not be had; the message is safe to show a client."""


def request_body(settings: Embeddings, inputs: Sequence[str], dimensions: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": settings.model_name, "input": list(inputs),
                            "dimensions": dimensions}  # fmt: skip
    auth.apply_body(settings.auth, {}, body, "openai", FIXED)
    return body


def vectors_from(reply: Any, count: int) -> list[list[float]]:
    """The ``count`` vectors of a decoded reply, in input order; ``EmbeddingsError`` otherwise."""
    if isinstance(reply, Mapping) and isinstance(reply.get("data"), list):
        items = reply["data"]
        if all(isinstance(item, Mapping) for item in items):
            ordered = sorted(items, key=lambda item: _index(item.get("index")))
            vectors: Any = [item.get("embedding") for item in ordered]
        else:
            vectors = None
    elif isinstance(reply, Mapping):
        vectors = reply.get("embeddings")
    else:
        vectors = None
    if not isinstance(vectors, list) or len(vectors) != count:
        raise EmbeddingsError("the embeddings reply holds no vector for each input")
    return [_vector(vector) for vector in vectors]


def _index(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _vector(value: Any) -> list[float]:
    ok = isinstance(value, list) and value and all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in value
    )
    if not ok:
        raise EmbeddingsError("the embeddings reply holds a vector that is not a list of numbers")
    return [float(x) for x in value]


async def embed(
    client: Client,
    settings: Embeddings,
    inputs: Sequence[str],
    dimensions: int,
    timeout: Timeouts,
) -> list[list[float]]:
    """The vectors of ``inputs``; ``EmbeddingsError`` saying what went wrong."""
    where = masked_url(settings.upstream_url)
    try:
        url = URL(settings.upstream_url)
    except ValueError:
        raise EmbeddingsError(f"embeddings upstream_url is not a valid URL ({where})") from None
    query: MultiDict[str] = MultiDict(url.query)
    auth.apply_query(settings.auth, {}, query)
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/json",
                                             "Accept": "application/json"})  # fmt: skip
    auth.apply_header(settings.auth, {}, headers)
    body = json_bytes(request_body(settings, inputs, dimensions), cjson=False)
    try:
        target = url.with_query(query)
        async with await client.request("POST", target, headers, body, timeout) as response:
            if response.status != 200:
                raise EmbeddingsError(f"the embeddings API ({where}) answered {response.status}")
            if (response.content_length or 0) > MAX_REPLY_BYTES:
                raise EmbeddingsError(f"the embeddings reply from {where} is too large")
            text = await response.content.read(MAX_REPLY_BYTES + 1)
            if len(text) > MAX_REPLY_BYTES:
                raise EmbeddingsError(f"the embeddings reply from {where} is too large")
    except (UpstreamError, OSError, ValueError) as error:
        kind = "timed out" if isinstance(error, TimeoutError) else "failed"
        raise EmbeddingsError(f"the embeddings request to {where} {kind}") from None
    try:
        reply = json.loads(text)
    except ValueError:
        raise EmbeddingsError(f"the embeddings reply from {where} is not JSON") from None
    return vectors_from(reply, len(inputs))
