"""``llama2_format: ollama``: Ollama's native ``/api/chat`` and ``/api/generate`` bodies
(Kong: ``kong/llm/drivers/shared.lua``, ``to_ollama()`` and ``from_ollama()``;
docs/kong-behaviour.md#ollama-format).

Kong reports ``created`` as Ollama's ISO string and guesses ``finish_reason`` from the
configured max_tokens only; the fixed codec gives OpenAI's integer ``created``, an ``id``, and
Ollama's own ``done_reason``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..model import OLLAMA, ReplyStamp
from .exchange import (
    Codec,
    Exchange,
    TransformError,
    parse_upstream,
    reply_json,
    tuning_options,
)

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
    options = tuning_options(body, max_tokens_as="num_predict")
    if not exchange.behaviour.ollama_drops_stop_and_seed:
        stop = body.get("stop")
        extensions = {"stop": [stop] if isinstance(stop, str) else stop, "seed": body.get("seed")}
        options.update((name, value) for name, value in extensions.items() if value is not None)
    request["options"] = options
    return request


def decode(upstream_body: bytes, exchange: Exchange, stamp: ReplyStamp) -> bytes:
    value = parse_upstream(upstream_body, NOT_JSON)
    kong_reply = exchange.behaviour.ollama_kong_reply
    if isinstance(value, list) and kong_reply:
        value = {}  # Kong reads an array as a table without any of the fields
    if not isinstance(value, Mapping):
        raise TransformError(NOT_JSON)

    prompt_tokens = _count(value.get("prompt_eval_count"))
    completion_tokens = _count(value.get("eval_count"))
    finish_reason = _finish_reason(value, completion_tokens, exchange)
    choice: dict[str, Any]
    if exchange.chat:
        choice = {"finish_reason": finish_reason, "index": 0}
        if "message" in value:
            choice["message"] = value["message"]
    else:
        choice = {"index": 0}
        if "response" in value or not kong_reply:  # a Lua nil is no key at all
            choice["text"] = value.get("response")
        if not kong_reply:
            choice["finish_reason"] = finish_reason

    reply: dict[str, Any] = {}
    if not kong_reply:
        reply["id"] = stamp.id
    reply["object"] = "chat.completion" if exchange.chat else "text_completion"
    if not kong_reply:
        reply["created"] = _epoch_seconds(value.get("created_at"), stamp.created)
    elif "created_at" in value:
        reply["created"] = value["created_at"]
    if "model" in value or not kong_reply:
        reply["model"] = value.get("model", exchange.model)
    reply["choices"] = [choice]
    reply["usage"] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    return reply_json(reply, exchange.behaviour)


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


def _epoch_seconds(created_at: Any, now: int) -> int:
    """Ollama's RFC 3339 ``created_at`` (nanosecond precision) as OpenAI's integer seconds;
    ``now`` when it has none."""
    found = _RFC3339.match(created_at) if isinstance(created_at, str) else None
    if found is None:
        return now
    date, clock, _fraction, zone = found.groups()
    zone = zone or "Z"
    zone = "+00:00" if zone in "Zz" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}{zone}")
    except ValueError:
        return now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


CODEC = Codec(OLLAMA, encode, decode)
