"""The client's request body: parsing, then Kong's checks in Kong's order
(docs/kong-behaviour.md#request-body, #request-checks).

``parse_body`` turns bytes into the body table (or None, which every later check reports as
"no valid prompts"). ``plan_request`` runs the checks and returns either a ``Plan`` for the codec
or the ``Rejection`` the client gets. Both are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from . import strict_json, tuning
from .behaviour import Behaviour
from .model import CHAT, COMPLETIONS, OPENAI
from .request_body import NGINX_BODY_BUFFER

NO_PROMPTS = "request body doesn't contain valid prompts"


@dataclass(slots=True)
class Rejection:
    """A 400 (or other) answered by the proxy itself, with Kong's message."""

    message: str
    status: int = 400
    plain_text: bool = False  # Kong's one plain-string error body (`messages:[]` + prompt)


@dataclass(slots=True)
class Plan:
    body: dict[str, Any]  # the client body, configured tuning options merged in
    model: str
    stream: bool


def parse_body(
    raw: bytes | None, content_type: str | None, limit: int, behaviour: Behaviour
) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is missing, not JSON, not an object, too
    large (``limit`` bytes, 0 = no limit; ``raw`` None: larger than the server reads) or refused
    by ``examine_body``."""
    body = examine_body(raw, content_type, limit, behaviour)
    return None if isinstance(body, Rejection) else body


def examine_body(
    raw: bytes | None, content_type: str | None, limit: int, behaviour: Behaviour
) -> dict[str, Any] | None | Rejection:
    """``parse_body``, but JSON the proxy refuses (not UTF-8, a lone surrogate, NaN, a huge
    number, deep nesting, a repeated key: ``strict_json``) is a ``Rejection`` saying why."""
    if raw is None:
        return None
    spilled = len(raw) > NGINX_BODY_BUFFER or not behaviour.body_limit_only_when_spilled
    if limit and len(raw) > limit and spilled:
        return None
    media_type = (content_type or "").strip().lower()
    if behaviour.form_bodies and media_type.startswith("application/x-www-form-urlencoded"):
        return _form_table(raw)
    if media_type and not media_type.startswith("application/json"):
        return None
    try:
        value = strict_json.load(
            raw, duplicate_keys_last_wins=behaviour.duplicate_json_keys_last_wins
        )
    except strict_json.Refused as refused:
        return Rejection(str(refused))
    except strict_json.NotJson:
        return None
    return value if isinstance(value, dict) else None


def _form_table(raw: bytes) -> dict[str, Any] | None:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None
    table: dict[str, Any] = {}
    for key, value in pairs:
        if key in table:
            previous = table[key]
            table[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            table[key] = value
    return table


def has_chat(body: Mapping[str, Any]) -> bool:
    messages = body.get("messages")
    return isinstance(messages, list) and len(messages) > 0


def has_completion(body: Mapping[str, Any]) -> bool:
    return isinstance(body.get("prompt"), str)


def plan_request(
    body: dict[str, Any] | None,
    *,
    route_type: str,
    configured_model: str | None,
    configured_tuning: Mapping[str, Any],
    llama2_format: str,
    response_streaming: str,
    behaviour: Behaviour,
) -> Plan | Rejection:
    """Kong's checks 2-6, in order (docs/kong-behaviour.md#request-checks); check 1, the
    templates, is the caller's, and the codec's encode is check 7."""
    chat = body is not None and has_chat(body)
    completion = body is not None and has_completion(body)
    if body is None or not (chat or completion):
        return Rejection(NO_PROMPTS)

    model = tuning.resolve_model_name(configured_model, body, behaviour)
    if tuning.foreign_model(body, model):
        return Rejection(f"cannot use own model - must be: {model}")
    if model is None:
        return Rejection("model parameter not found in request, nor in gateway configuration")

    if chat and completion:
        return Rejection("request matches multiple LLM request formats")
    request_format = CHAT if chat else COMPLETIONS
    if request_format != route_type:
        return Rejection(
            f"[{request_format}] message format is not compatible with [{route_type}] route type"
        )

    stream = tuning.stream_requested(body, behaviour) or response_streaming == "always"
    if stream and response_streaming == "deny":
        return Rejection("response streaming is not enabled for this LLM")

    planned = tuning.merge_tuning(body, configured_tuning)
    if behaviour.empty_messages_with_prompt_plaintext_400:
        if llama2_format != OPENAI and _lua_truthy_pair(planned):
            return Rejection(
                "cannot run raw 'prompt' and chat history 'messages' requests at the same time "
                "- refer to schema",
                plain_text=True,
            )
    else:  # an empty `messages` beside a prompt (or a stray `prompt` beside messages) is noise
        planned.pop("messages" if request_format == COMPLETIONS else "prompt", None)
    if stream:
        planned["stream"] = True
    return Plan(planned, model, stream)


def _lua_truthy_pair(body: Mapping[str, Any]) -> bool:
    """Both `prompt` and `messages` present and not false: Kong's raw/ollama transformers refuse
    them (a JSON null is truthy in Kong's Lua)."""
    return all(key in body and body[key] is not False for key in ("prompt", "messages"))
