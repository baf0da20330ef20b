"""One JSON log line per request, with Kong's ``ai.proxy`` analytics when the target asks for
them (docs/kong-behaviour.md#analytics). Credentials never reach the line: body credentials are
masked and headers are not logged at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .json_text import compact_json
from .model import PROVIDER, Target
from .streaming import StreamOutcome
from .streaming.events import as_count


@dataclass(frozen=True)
class Outcome:
    """What happened to one request, as far as the log is concerned."""

    request_id: str
    route: str
    method: str
    path: str
    status: int
    latency_ms: int
    target: Target | None = None
    request_model: str | None = None
    llm_latency_ms: int | None = None  # to the upstream's response headers
    client_body: Mapping[str, Any] | None = None  # already redacted
    reply: bytes | None = None  # the body the client got (a 200 or a transform failure)
    stream: StreamOutcome | None = None  # how a streamed answer went
    kong_compat: bool = False


def log_line(outcome: Outcome) -> str:
    line: dict[str, Any] = {
        "request_id": outcome.request_id,
        "route": outcome.route,
        "method": outcome.method,
        "path": outcome.path,
        "status": outcome.status,
        "latency_ms": outcome.latency_ms,
    }
    proxy = _ai_proxy(outcome)
    if proxy:
        line["ai"] = {"proxy": proxy}
    return compact_json(line)


def _ai_proxy(outcome: Outcome) -> dict[str, Any]:
    target = outcome.target
    if target is None or outcome.llm_latency_ms is None:
        return {}
    section: dict[str, Any] = {}
    if target.log_statistics:
        section.update(_statistics(outcome, target, outcome.llm_latency_ms))
    # Kong logs payloads only beside statistics; the fixed proxy on log_payloads alone.
    if target.log_payloads and (target.log_statistics or not outcome.kong_compat):
        request = outcome.client_body
        section["payload"] = {
            "request": json.dumps(request, ensure_ascii=False) if request is not None else None,
            "response": _response_payload(outcome),
        }
    return section


def _statistics(outcome: Outcome, target: Target, latency: int) -> dict[str, Any]:
    """Kong's ``meta`` and ``usage`` sections."""
    if outcome.stream is not None:
        prompt, completion, total = _stream_usage(outcome.stream, target, outcome.kong_compat)
        response_model = outcome.stream.model
    else:
        reply = _json(outcome.reply)
        prompt, completion, total = _reply_usage(reply, outcome.kong_compat)
        response_model = reply.get("model") if isinstance(reply.get("model"), str) else None
    options = target.options
    cost = 0.0
    if options.input_cost and options.output_cost:
        cost = (prompt * options.input_cost + completion * options.output_cost) / 1e6
    request_model = outcome.request_model or "UNSPECIFIED"
    return {
        "meta": {
            "provider_name": PROVIDER,
            "request_model": request_model,
            "response_model": response_model or request_model,
            "llm_latency": latency,
        },
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
            "time_per_token": latency / completion if completion else 0,
            "cost": cost,
        },
    }


def _reply_usage(reply: Mapping[str, Any], kong_compat: bool) -> tuple[int, int, int]:
    usage = reply.get("usage") if isinstance(reply.get("usage"), Mapping) else {}
    prompt = as_count(usage.get("prompt_tokens"))
    completion = as_count(usage.get("completion_tokens"))
    total = prompt + completion
    if not kong_compat:  # the upstream's total may count reasoning tokens (Kong issue #14816)
        total = max(total, as_count(usage.get("total_tokens")))
    return prompt, completion, total


def _stream_usage(stream: StreamOutcome, target: Target, kong_compat: bool) -> tuple[int, int, int]:
    prompt = stream.usage.prompt_tokens if stream.usage else 0
    completion = stream.usage.completion_tokens if stream.usage else 0
    # Kong estimates the completion from the text, but keeps the text only for payload logging
    # (Kong issue #14535); the fixed proxy always has the length.
    if completion == 0 and (target.log_payloads or not kong_compat):
        completion = stream.estimated_completion_tokens
    return prompt, completion, prompt + completion


def _response_payload(outcome: Outcome) -> str | None:
    if outcome.stream is not None:
        return outcome.stream.text
    return outcome.reply.decode("utf-8", "replace") if outcome.reply else None


def _json(body: bytes | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
