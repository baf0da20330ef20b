"""The independent oracle: what an upstream must receive and what the client must get back.

Written from the specification (Kong's llama2 driver, ``kong/llm/drivers/llama2.lua``, and the
fixed behaviour in ``docs/kong-behaviour.md``), never from the reference proxy's codecs: a
conformance check is only worth something if the checker does not share code with the thing it
checks. ``kong_compat`` selects Kong's observable behaviour (its
[BUG]s included) instead of the fixed reference behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
TUNING = ("max_tokens", "temperature", "top_p", "top_k")


def effective_tuning(request: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """For each tuning field a configured value wins, otherwise the client's is kept (Kong's
    ``merge_config_defaults``)."""
    merged = {}
    for name in TUNING:
        value = options.get(name, request.get(name))
        if value is not None:
            merged[name] = value
    return merged


# Llama 2's control sequences (docs/prompt-injection.md): the tokenizer's `<s>` and `</s>` as
# they are; the chat tags as an opening bracket, optional ASCII whitespace, an optional slash,
# optional whitespace, the word in any ASCII case, optional whitespace, the closing bracket.
SPECIAL_TOKENS = ("<s>", "</s>")
CONTROL_TAGS = (("<<", "sys", ">>"), ("[", "inst", "]"))
ASCII_SPACE = " \t\n\r\f\v"
ZERO_WIDTH_SPACE = "\u200b"
CONTROL_TOKENS_QUIRK = "control tokens in user text pass into the raw prompt"


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in ASCII_SPACE:
        at += 1
    return at


def _control_tag_end(text: str, at: int) -> int | None:
    """Where the control sequence starting at ``at`` ends, if one does."""
    for token in SPECIAL_TOKENS:
        if text.startswith(token, at):
            return at + len(token)
    for opening, word, closing in CONTROL_TAGS:
        if not text.startswith(opening, at):
            continue
        end = _skip_space(text, at + len(opening))
        if text.startswith("/", end):
            end = _skip_space(text, end + 1)
        letters = text[end:end + len(word)]
        if not (letters.isascii() and letters.lower() == word):
            continue
        end = _skip_space(text, end + len(word))
        if text.startswith(closing, end):
            return end + len(closing)
    return None


def has_control_tokens(text: Any) -> bool:
    return isinstance(text, str) and any(
        _control_tag_end(text, at) is not None for at in range(len(text)))


def neutralise_control_tokens(text: str) -> str:
    """The fixed gateway's rule: a zero-width space after the first character of every control
    sequence, scanning left to right, so none is left for the tokenizer or the model to read."""
    out, at = [], 0
    while at < len(text):
        end = _control_tag_end(text, at)
        if end is None:
            out.append(text[at])
            at += 1
        else:
            out.append(text[at] + ZERO_WIDTH_SPACE + text[at + 1:end])
            at = end
    return "".join(out)


def llama2_chat_prompt(messages: Sequence[Mapping[str, Any]], kong_compat: bool,
                       neutralise: bool = True) -> str:
    """The Llama 2 ``[INST]`` prompt for a conversation (Kong's ``messages_to_inst``, or fixed:
    with control tokens in the contents neutralised unless ``neutralise`` is off)."""
    if kong_compat:
        # Kong places messages purely by position and drops every assistant turn.
        parts = []
        for position, message in enumerate(messages, start=1):
            content, role = message.get("content"), message.get("role")
            if position == 1:
                parts.append(f"<s>[INST] <<SYS>> {content} <</SYS>>")
            elif position == 2:
                parts.append(f" {content} [/INST]")
            elif role == "system":
                parts.append(f" {content} </s>")
            elif role == "user":
                parts.append(f" <s>[INST] {content} [/INST]")
        return "".join(parts)
    # Fixed: the Llama 2 template by role. A leading system message opens the first [INST] block
    # and the first question completes it; every later question opens its own block; answers
    # (assistant turns, and system turns after the first, as in Kong's fixtures) follow a closed
    # block and end with </s>. An unanswered system block is still closed; an answer with no
    # question before it gets an empty one. Any other role (tool, ...) is model input: a question.
    prompt, block_open = "", False
    for position, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if neutralise and isinstance(content, str):
            content = neutralise_control_tokens(content)
        if position == 0 and role == "system":
            prompt, block_open = f"<s>[INST] <<SYS>> {content} <</SYS>>", True
        elif role in ("assistant", "system"):
            if block_open or not prompt:
                prompt = (prompt or "<s>[INST]") + " [/INST]"
                block_open = False
            prompt += f" {content} </s>"
        elif block_open:
            prompt, block_open = prompt + f" {content} [/INST]", False
        else:
            prompt += f"{' ' if prompt else ''}<s>[INST] {content} [/INST]"
    return prompt + " [/INST]" if block_open else prompt


def llama2_completion_prompt(prompt: str, kong_compat: bool, neutralise: bool = True) -> str:
    closing = "<<SYS>>" if kong_compat else "<</SYS>>"  # Kong's typo in to_raw
    if neutralise and not kong_compat:
        prompt = neutralise_control_tokens(prompt)
    return f"<s> [INST] <<SYS>> You are a helpful assistant. {closing} {prompt} [/INST]"


@dataclass(frozen=True)
class RouteSetup:
    """What a gateway route is configured with: enough for the oracle to predict traffic."""

    llama2_format: str  # raw | ollama | openai
    route_type: str  # llm/v1/chat | llm/v1/completions
    model: str | None
    options: Mapping[str, Any]
    auth: Mapping[str, Any] = field(default_factory=dict)


def expected_upstream_body(
    target: RouteSetup, request: Mapping[str, Any], kong_compat: bool = False
) -> dict[str, Any]:
    """The JSON body the upstream must receive for ``request`` (``stream`` the decided mode)."""
    tuning = effective_tuning(request, target.options)
    stream = streams(request, kong_compat)
    chat = target.route_type == CHAT
    if target.llama2_format == "raw":
        inputs = (
            llama2_chat_prompt(request["messages"], kong_compat)
            if chat
            else llama2_completion_prompt(request["prompt"], kong_compat)
        )
        parameters = {"max_new_tokens": tuning.get("max_tokens")}
        parameters.update({k: tuning.get(k) for k in ("temperature", "top_p", "top_k")})
        parameters = {k: v for k, v in parameters.items() if v is not None}
        parameters["stream"] = stream
        raw: dict[str, Any] = {"inputs": inputs, "parameters": parameters}
        if stream and not kong_compat:  # TGI and the Inference API read the top-level flag
            raw["stream"] = True
        return _with_body_auth(raw, target, request, kong_compat)
    if target.llama2_format == "ollama":
        options = {"num_predict": tuning.get("max_tokens")}
        options.update({k: tuning.get(k) for k in ("temperature", "top_p", "top_k")})
        body: dict[str, Any] = {"model": target.model or request.get("model")}
        if chat:
            body["messages"] = request["messages"]
        else:
            body["prompt"] = request["prompt"]
        body["stream"] = stream
        body["options"] = {k: v for k, v in options.items() if v is not None}
        return _with_body_auth(body, target, request, kong_compat)
    # openai: the client's body, with the model, a boolean stream, config tuning and no top_k
    body = {k: v for k, v in request.items() if k != "top_k"}
    body.update({k: v for k, v in tuning.items() if k != "top_k"})
    body["model"] = target.model or request.get("model")
    body["stream"] = stream
    return _with_body_auth(body, target, request, kong_compat, openai=True)


def streams(request: Mapping[str, Any], kong_compat: bool) -> bool:
    """Whether the gateway streams: only a JSON ``true`` (Kong: any present value but false)."""
    if kong_compat:  # cjson's null is a truthy userdata
        return "stream" in request and request["stream"] is not False
    return request.get("stream") is True


def _client_supplied(auth: Mapping[str, Any], present: bool) -> bool:
    return present and bool(auth.get("allow_override"))


def _with_body_auth(body: dict[str, Any], target: RouteSetup, request: Mapping[str, Any],
                    kong_compat: bool, openai: bool = False) -> dict[str, Any]:
    """Body-param auth: the configured value unless the client's wins by ``allow_override``.
    Kong writes it after the format transform, so only the openai format carries it."""
    auth = target.auth
    if auth.get("param_location") != "body" or not auth.get("param_name"):
        return body
    name = auth["param_name"]
    if kong_compat and not openai:
        return body
    body[name] = request[name] if _client_supplied(auth, name in request) else auth.get(
        "param_value")
    return body


def expected_auth(target: RouteSetup, headers: Mapping[str, str], query: Mapping[str, Any]
                  ) -> tuple[dict[str, str], dict[str, Any]]:
    """The credential header and query parameter the upstream must receive."""
    auth = target.auth
    want_headers: dict[str, str] = {}
    want_query: dict[str, Any] = {}
    if auth.get("header_name"):
        name = auth["header_name"]
        client = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
        want_headers[name] = client if _client_supplied(auth, client is not None) else auth.get(
            "header_value")
    if auth.get("param_location") == "query" and auth.get("param_name"):
        name = auth["param_name"]
        want_query[name] = (query[name] if _client_supplied(auth, name in query)
                            else auth.get("param_value"))
    return want_headers, want_query


def kong_quirks(target: RouteSetup, request: Mapping[str, Any], hosting_mock: str) -> list[str]:
    """The names of Kong's known deviations that can show in this exchange."""
    chat = target.route_type == CHAT
    names = []
    stream = streams(request, kong_compat=True)
    if target.llama2_format == "raw":
        if _kong_prompt_keeps_control_tokens(request, chat):
            names.append(CONTROL_TOKENS_QUIRK)
        # The template's own difference, with the contents left as typed in both.
        if chat and isinstance(request.get("messages"), list):
            prompts = [llama2_chat_prompt(request["messages"], flag, neutralise=False)
                       for flag in (True, False)]
        elif not chat and isinstance(request.get("prompt"), str):
            prompts = [llama2_completion_prompt(request["prompt"], flag, neutralise=False)
                       for flag in (True, False)]
        else:
            prompts = [None, None]
        if prompts[0] != prompts[1]:
            names.append("raw chat prompt built by position (assistant turns dropped)" if chat
                         else "raw completions prompt closes <<SYS>> with <<SYS>>")
        if stream:
            names.append("raw streaming has no transformer (empty 200 or an error event)")
        elif hosting_mock != "llamacpp":
            names.append("raw reads only {data: [...]}: HuggingFace replies fail with 500")
    elif target.llama2_format == "ollama":
        names.append("Ollama streams lack role and finish chunks" if stream
                     else "Ollama replies: created as a string, done_reason ignored")
    if stream:
        names.append("[DONE] sent without its closing blank line")
    if target.auth.get("param_location") == "body" and target.llama2_format != "openai":
        names.append("body-param auth not sent for raw and ollama formats")
    if request.get("stream") not in (None, True, False):
        names.append("any non-false stream value streams")
    return names


def _kong_prompt_keeps_control_tokens(request: Mapping[str, Any], chat: bool) -> bool:
    """Whether a control token a client typed reaches Kong's raw prompt (Kong drops some
    messages, so a token in one of those never does)."""
    if not chat:
        return has_control_tokens(request.get("prompt"))
    messages = request.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        return False
    neutralised = [{**m, "content": neutralise_control_tokens(m["content"])}
                   if isinstance(m.get("content"), str) else m for m in messages]
    return llama2_chat_prompt(messages, True) != llama2_chat_prompt(neutralised, True)


@dataclass(frozen=True)
class ExpectedReply:
    """What the client must get for an upstream 200; ``exact`` bodies must match byte for byte.
    When the gateway cannot translate the reply, ``status`` is 500 and ``error`` its message."""

    object: str
    text: str | None = None  # the assistant content (chat) or the completion text
    model: str | None = None
    finish_reason: str | None = None
    usage: Mapping[str, int] | None = None
    exact: bytes | None = None
    status: int = 200
    error: str | None = None


def _after_last_inst(text: str) -> str:
    # Kong trims with Lua's `%s`: ASCII whitespace only (U+00A0, U+2028 … stay).
    return text.rsplit("[/INST]", 1)[-1].strip(ASCII_SPACE)


def raw_failure(body: Any) -> str | None:
    """Why Kong's raw decoder rejects a reply (§3.3), or None when it reads it."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) > 1:
        return "cannot parse response from llama2 endpoint"
    first = data[0] if data else None
    if not isinstance(first, dict) or not isinstance(first.get("generated_text"), str):
        return "response data is empty from llama2 endpoint"
    return None


def raw_generated_text(body: Any, kong_compat: bool) -> str | None:
    """The generated text of a raw upstream reply: Kong reads only ``data[0]``; fixed mode also
    reads the HF Inference API array, TGI's object and the documented ``responses`` field."""
    if isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]:
        first = body["data"][0]
        return first.get("generated_text") if isinstance(first, dict) else None
    if kong_compat:
        return None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0].get("generated_text")
    if isinstance(body, dict):
        if isinstance(body.get("generated_text"), str):
            return body["generated_text"]
        responses = body.get("responses")
        if isinstance(responses, str):
            return responses
        if isinstance(responses, list) and responses and isinstance(responses[0], dict):
            return responses[0].get("generated_text")
    return None


def expected_reply(
    target: RouteSetup, upstream_body: bytes, kong_compat: bool = False
) -> ExpectedReply:
    """What the client must receive when the upstream answered 200 with ``upstream_body``."""
    chat = target.route_type == CHAT
    client_object = "chat.completion" if chat else "text_completion"
    if target.llama2_format == "openai":
        return ExpectedReply(client_object, exact=upstream_body)
    body = json.loads(upstream_body)
    if target.llama2_format == "raw":
        text = raw_generated_text(body, kong_compat)
        if text is None:
            reason = raw_failure(body) or "response data is empty from llama2 endpoint"
            failure = f"transformation failed from type llama2://{target.route_type}: {reason}"
            return ExpectedReply(client_object, status=500, error=failure)
        return ExpectedReply(client_object, _after_last_inst(text))
    prompt_tokens = body.get("prompt_eval_count", 0)
    completion_tokens = body.get("eval_count", 0)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    text = body.get("message", {}).get("content") if chat else body.get("response")
    finish = None if kong_compat else body.get("done_reason")
    return ExpectedReply(client_object, text, body.get("model"), finish, usage)


def reply_deviations(expected: ExpectedReply, status: int, body: bytes) -> list[str]:
    """How a client response departs from the expectation (empty when it conforms)."""
    if status != expected.status:
        return [f"status {status}, expected {expected.status}"]
    if expected.error is not None:
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            return ["error body is not {\"error\": {\"message\": ...}}"]
        if message != expected.error:
            return [f"error {message!r}, expected {expected.error!r}"]
        return []
    if expected.exact is not None:
        return [] if body == expected.exact else ["body is not the upstream body byte for byte"]
    try:
        got = json.loads(body)
    except ValueError:
        return ["body is not JSON"]
    problems = []
    if got.get("object") != expected.object:
        problems.append(f"object {got.get('object')!r}, expected {expected.object!r}")
    choice = (got.get("choices") or [{}])[0]
    text = choice.get("message", {}).get("content") if "message" in choice else choice.get("text")
    if text != expected.text:
        problems.append(f"text {text!r}, expected {expected.text!r}")
    if expected.model is not None and got.get("model") != expected.model:
        problems.append(f"model {got.get('model')!r}, expected {expected.model!r}")
    if expected.finish_reason is not None and choice.get("finish_reason") != expected.finish_reason:
        problems.append(
            f"finish_reason {choice.get('finish_reason')!r}, expected {expected.finish_reason!r}"
        )
    if expected.usage is not None and got.get("usage") != dict(expected.usage):
        problems.append(f"usage {got.get('usage')!r}, expected {dict(expected.usage)!r}")
    return problems
