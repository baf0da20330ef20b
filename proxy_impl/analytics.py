"""One JSON log line per request, with Kong's ``ai.proxy`` analytics when the target asks for
them (docs/kong-behaviour.md#analytics), and for AI Proxy Advanced a ``balancer`` section: the
target that answered, every attempt, the latency and the usage (docs/balancer.md#the-log-line).
Credentials never reach the line: body credentials are masked, headers are not logged at all and
upstream URLs lose their userinfo and query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import masked_url
from .json_text import compact_json
from .model import PROVIDER, Target
from .streaming import StreamOutcome
from .streaming.events import as_count


@dataclass(slots=True)
class Try:
    """One attempt at an upstream: its target, how long it took and how it ended."""

    target: int  # the index in the plugin's targets
    latency_ms: float  # to the response head, or to the failure
    status: int | None = None  # the upstream's status, when it answered
    failure: str | None = None  # error | timeout | invalid_header | dns, when it did not


@dataclass(slots=True)
class Usage:
    """A reply's token counts and what they cost (the target's input and output costs)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0


@dataclass(slots=True)
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
    balanced: bool = False  # AI Proxy Advanced: the line has a ``balancer`` section
    tries: tuple[Try, ...] = ()
    target_index: int | None = None  # the target of the last attempt
    usage: Usage | None = None  # the answer's usage, once it was measured


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
    if outcome.balanced and outcome.tries and outcome.target is not None:
        line["balancer"] = _balancer(outcome, outcome.target)
    return compact_json(line)


def _balancer(outcome: Outcome, target: Target) -> dict[str, Any]:
    section: dict[str, Any] = {
        "target": outcome.target_index,
        "model": f"{PROVIDER}/{outcome.request_model or target.model_name}",
        "upstream_url": masked_url(target.options.upstream_url),
        "attempts": len(outcome.tries),
        "tries": [_try(one) for one in outcome.tries],
    }
    if outcome.llm_latency_ms is not None:
        section["llm_latency_ms"] = outcome.llm_latency_ms
    if outcome.usage is not None:
        section["usage"] = {
            "prompt_tokens": outcome.usage.prompt_tokens,
            "completion_tokens": outcome.usage.completion_tokens,
            "total_tokens": outcome.usage.total_tokens,
            "cost": outcome.usage.cost,
        }
    return section


def _try(one: Try) -> dict[str, Any]:
    shown: dict[str, Any] = {"target": one.target, "latency_ms": int(one.latency_ms)}
    if one.status is not None:
        shown["status"] = one.status
    if one.failure is not None:
        shown["failure"] = one.failure
    return shown


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


def usage_of(
    target: Target,
    reply: bytes | None,
    stream: StreamOutcome | None,
    kong_compat: bool = False,
) -> Usage:
    """The usage of an answer: the streamed one when ``stream`` is given, else the reply body."""
    if stream is not None:
        prompt, completion, total = _stream_usage(stream, target, kong_compat)
    else:
        prompt, completion, total = _reply_usage(_json(reply), kong_compat)
    options = target.options
    cost = 0.0
    if options.input_cost and options.output_cost:
        cost = (prompt * options.input_cost + completion * options.output_cost) / 1e6
    return Usage(prompt, completion, total, cost)


def _statistics(outcome: Outcome, target: Target, latency: int) -> dict[str, Any]:
    """Kong's ``meta`` and ``usage`` sections."""
    usage = usage_of(target, outcome.reply, outcome.stream, outcome.kong_compat)
    if outcome.stream is not None:
        response_model = outcome.stream.model
    else:
        reply = _json(outcome.reply)
        response_model = reply.get("model") if isinstance(reply.get("model"), str) else None
    request_model = outcome.request_model or "UNSPECIFIED"
    completion = usage.completion_tokens
    return {
        "meta": {
            "provider_name": PROVIDER,
            "request_model": request_model,
            "response_model": response_model or request_model,
            "llm_latency": latency,
        },
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": usage.total_tokens,
            "time_per_token": latency / completion if completion else 0,
            "cost": usage.cost,
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
