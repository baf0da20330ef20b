"""``llama2_format: ollama``: Ollama's native ``/api/chat`` and ``/api/generate`` bodies
(kong_semantics §3.4, §3.5, §10.11, §10.12).

Kong reports ``created`` as Ollama's ISO string and guesses ``finish_reason`` from the
configured max_tokens only; the fixed codec gives OpenAI's integer ``created``, an ``id``, and
Ollama's own ``done_reason``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import Codec, Exchange, TransformError, compact_json

NOT_JSON = "failed to decode ollama response"
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def encode(body: Mapping[str, Any], exchange: Exchange) -> dict[str, Any]:
    request: dict[str, Any] = {"model": exchange.model}
    if exchange.chat:
        request["messages"] = body["messages"]
    else:
        request["prompt"] = body["prompt"]
    for name in ("tools", "tool_choice"):
        if name in body:
            request[name] = body[name]
    request["stream"] = exchange.stream
    options = {
        "num_predict": body.get("max_tokens"),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "top_k": body.get("top_k"),
    }
    if exchange.behaviour.ollama_sampling_extensions:
        stop = body.get("stop")
        options["stop"] = [stop] if isinstance(stop, str) else stop
        options["seed"] = body.get("seed")
    request["options"] = {name: value for name, value in options.items() if value is not None}
    return request


def decode(upstream_body: bytes, exchange: Exchange) -> bytes:
    try:
        value = json.loads(upstream_body)
    except ValueError:
        raise TransformError(NOT_JSON) from None
    behaviour = exchange.behaviour
    if isinstance(value, list) and behaviour.ollama_kong_reply:
        value = {}  # Kong reads an array as a table without any of the fields
    if not isinstance(value, Mapping):
        raise TransformError(NOT_JSON)

    prompt_tokens = _count(value.get("prompt_eval_count"))
    completion_tokens = _count(value.get("eval_count"))
    finish_reason = _finish_reason(value, completion_tokens, exchange)
    if exchange.chat:
        choice: dict[str, Any] = {"finish_reason": finish_reason, "index": 0}
        if "message" in value:
            choice["message"] = value["message"]
        choices = [choice]
    else:
        choice = {"index": 0, "text": value.get("response")}
        if behaviour.openai_style_response_extras:
            choice["finish_reason"] = finish_reason
        choices = [choice]

    reply: dict[str, Any] = {}
    if behaviour.openai_style_response_extras:
        prefix = "chatcmpl" if exchange.chat else "cmpl"
        reply["id"] = f"{prefix}-{uuid.uuid4().hex}"
    reply["object"] = "chat.completion" if exchange.chat else "text_completion"
    if behaviour.ollama_kong_reply:
        if "created_at" in value:
            reply["created"] = value["created_at"]
    else:
        reply["created"] = _epoch_seconds(value.get("created_at"))
    if "model" in value:
        reply["model"] = value["model"]
    elif not behaviour.ollama_kong_reply:
        reply["model"] = exchange.model
    reply["choices"] = choices
    reply["usage"] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    return compact_json(reply)


def _finish_reason(value: Mapping[str, Any], completion_tokens: int, exchange: Exchange) -> str:
    if exchange.behaviour.ollama_config_only_finish_reason:
        # Kong: a `finish_reason` field (Ollama has none), else "length" only when the count hits
        # the *configured* max_tokens.
        given = value.get("finish_reason")
        if isinstance(given, str):
            return given
        limit = exchange.configured_max_tokens
        return "length" if "eval_count" in value and completion_tokens == limit else "stop"
    reason = value.get("done_reason")
    if isinstance(reason, str) and reason:
        return reason
    limit = exchange.effective_max_tokens
    return "length" if limit is not None and completion_tokens == limit else "stop"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _epoch_seconds(created_at: Any) -> int:
    """Ollama's RFC 3339 ``created_at`` (nanosecond precision) as OpenAI's integer seconds."""
    found = _RFC3339.match(created_at) if isinstance(created_at, str) else None
    if found is None:
        return int(time.time())
    date, clock, _fraction, zone = found.groups()
    zone = zone or "Z"
    zone = "+00:00" if zone in "Zz" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}{zone}")
    except ValueError:
        return int(time.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


CODEC = Codec("ollama", encode, decode)
