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
from .lua_errors import (
    FROM_OLLAMA_INDEX_LINE,
    FROM_OLLAMA_SUM_LINE,
    SHARED_LUA,
    LuaError,
    arithmetic_operand,
    indexable,
    lua_add,
    lua_error,
    lua_type,
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
    if kong_reply:
        value = _as_lua_table(value)
    if not isinstance(value, Mapping):
        raise TransformError(NOT_JSON)

    prompt_tokens: Any
    completion_tokens: Any
    if kong_reply:
        prompt_tokens, completion_tokens, total_tokens = _kong_usage(value)
    else:
        prompt_tokens = _count(value.get("prompt_eval_count"))
        completion_tokens = _count(value.get("eval_count"))
        total_tokens = prompt_tokens + completion_tokens
    finish_reason = _finish_reason(value, exchange)
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
        "total_tokens": total_tokens,
    }
    return reply_json(reply, exchange.behaviour)


def _as_lua_table(value: Any) -> Mapping[str, Any]:
    """The decoded reply as Kong's ``from_ollama`` reads it: an object as it is; an array or a
    string as a table without any of the fields (Lua finds nil); anything else cannot be
    indexed, and that Lua error is the reason."""
    if isinstance(value, Mapping):
        return value
    if indexable(value):
        return {}
    raise TransformError(lua_error(
        SHARED_LUA, FROM_OLLAMA_INDEX_LINE,
        f"attempt to index local 'response_table' (a {lua_type(value)} value)",
    ))


def _kong_usage(value: Mapping[str, Any]) -> tuple[Any, Any, int | float]:
    """Kong's usage: each count as Ollama sent it (``or 0``: only a missing or false one is 0;
    a JSON null stays), the total their Lua sum (numeric strings count, anything else fails)."""
    prompt = _lua_or_zero(value, "prompt_eval_count")
    completion = _lua_or_zero(value, "eval_count")
    try:
        total = lua_add(completion, prompt, SHARED_LUA, FROM_OLLAMA_SUM_LINE)
    except LuaError as error:
        raise TransformError(str(error)) from None
    # a double in Lua; an integral one is written as an integer either way
    return prompt, completion, int(total) if total.is_integer() and abs(total) < 2**53 else total


def _lua_or_zero(value: Mapping[str, Any], name: str) -> Any:
    found = value.get(name, False)
    return 0 if found is False else found


def _finish_reason(value: Mapping[str, Any], exchange: Exchange) -> str:
    if exchange.behaviour.ollama_config_only_finish_reason:
        # Kong: a `finish_reason` field (Ollama has none), else "length" only when the count is
        # a number equal to the *configured* max_tokens (-1 when there is none).
        given = value.get("finish_reason")
        if isinstance(given, str):
            return given
        configured = exchange.configured_max_tokens
        limit = arithmetic_operand(configured) if configured is not None else -1.0
        count = value.get("eval_count")
        is_number = isinstance(count, int | float) and not isinstance(count, bool)
        return "length" if is_number and arithmetic_operand(count) == limit else "stop"
    reason = value.get("done_reason")
    if isinstance(reason, str) and reason:
        return reason
    limit = exchange.effective_max_tokens
    return "length" if limit is not None and _count(value.get("eval_count")) == limit else "stop"


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
