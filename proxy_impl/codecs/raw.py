"""``llama2_format: raw``: a hand-built Llama 2 ``[INST]`` prompt in ``{"inputs", "parameters"}``,
and the generated text read back (Kong: ``kong/llm/drivers/llama2.lua``, ``to_raw()``,
``messages_to_inst()`` and ``from_raw()``; docs/kong-behaviour.md#raw-format).

Kong builds the chat prompt by message position and drops assistant turns, closes the completions
system block with ``<<SYS>>``, lets a client's own ``[/INST]``, ``<<SYS>>`` or ``</s>`` open and
close turns, and reads only ``{"data":[{"generated_text"}]}``; the fixed codec follows the roles,
closes the block with ``<</SYS>>``, neutralises (or refuses) control tokens in client text
(docs/prompt-injection.md) and also reads what real servers answer: the HF Inference API's
``[{"generated_text"}]``, TGI's ``{"generated_text"}`` and the ``responses`` field Kong's docs
describe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..behaviour import Behaviour
from ..model import RAW, ReplyStamp
from .exchange import (
    Codec,
    EncodeError,
    Exchange,
    TransformError,
    parse_upstream,
    reply_json,
    tuning_options,
)
from .llama2_tokens import neutralise, refuse_control_sequences
from .lua_errors import (
    FROM_RAW_CHECK_LINE,
    FROM_RAW_DATA_LINE,
    INDEX_NIL,
    LLAMA2_LUA,
    PENLIGHT_ASSERT_LINE,
    PENLIGHT_STRINGX,
    lua_error,
    lua_type,
)

COMPLETION_SYSTEM = "You are a helpful assistant."
LUA_SPACE = " \t\n\v\f\r"  # what Lua's %s trims
NOT_JSON = "failed to decode llama2 response"
UNPARSEABLE = "cannot parse response from llama2 endpoint"
EMPTY = "response data is empty from llama2 endpoint"
NO_REPLY = "response did not contain a system reply"
_ABSENT = object()  # a key Lua would find nil, as opposed to a JSON null (a truthy userdata)


# --- request ----------------------------------------------------------------------------------


def client_text(text: str, where: str, behaviour: Behaviour) -> str:
    """Text a client wrote, made safe to place between the template's markers: it must not open
    or close a turn or a system block (docs/prompt-injection.md)."""
    if behaviour.raw_prompt_keeps_control_tokens:
        return text
    if behaviour.control_tokens == "reject":
        return refuse_control_sequences(text, where)
    return neutralise(text)


def completion_prompt(prompt: str, behaviour: Behaviour) -> str:
    closing = "<<SYS>>" if behaviour.completion_prompt_sys_typo else "<</SYS>>"
    prompt = client_text(prompt, "prompt", behaviour)
    return f"<s> [INST] <<SYS>> {COMPLETION_SYSTEM} {closing} {prompt} [/INST]"


def chat_prompt(messages: Sequence[Any], behaviour: Behaviour) -> str:
    if behaviour.positional_chat_prompt:
        return _kong_chat_prompt(messages, behaviour)
    return _chat_prompt(messages, behaviour)


def _kong_chat_prompt(messages: Sequence[Any], behaviour: Behaviour) -> str:
    """Kong's ``messages_to_inst``: message 1 is the system block and message 2 the first question
    whatever their roles; later `system` messages are answers, `user` ones questions, the rest
    (assistant, tool) vanish."""
    parts = []
    for position, message in enumerate(messages, start=1):
        if not isinstance(message, Mapping | str | list):
            # indexing a number, a boolean or a JSON null (`v.content`, `v.role`) is a Lua
            # error inside the transformer's pcall: Kong's 400
            raise EncodeError(f"message {position} is a {lua_type(message)}")
        content = client_text(_lua_text(message, "content"), _where(position - 1), behaviour)
        role = message.get("role") if isinstance(message, Mapping) else None
        if position == 1:
            parts.append(f"<s>[INST] <<SYS>> {content} <</SYS>>")
        elif position == 2:
            parts.append(f" {content} [/INST]")
        elif role == "system":
            parts.append(f" {content} </s>")
        elif role == "user":
            parts.append(f" <s>[INST] {content} [/INST]")
    return "".join(parts)


def _chat_prompt(messages: Sequence[Any], behaviour: Behaviour) -> str:
    """The Llama 2 chat template by role: an optional leading system block inside the first
    ``[INST]``, each question in ``<s>[INST] ... [/INST]``, each answer followed by ``</s>``.
    A system message after the first is an answer slot, as in Kong's own fixtures."""
    prompt = ""
    awaiting_question = False  # a system block is open and waits for the first question
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
            raise EncodeError("message content must be a string")
        role = message.get("role")
        content = client_text(message["content"], _where(position), behaviour)
        if position == 0 and role == "system":
            prompt = f"<s>[INST] <<SYS>> {content} <</SYS>>"
            awaiting_question = True
        elif role in ("assistant", "system"):
            if not prompt:
                prompt = "<s>[INST]"  # an answer needs a question before it, even an empty one
            if awaiting_question or not prompt.endswith(("[/INST]", "</s>")):
                prompt += " [/INST]"
                awaiting_question = False
            prompt += f" {content} </s>"
        elif awaiting_question:
            prompt += f" {content} [/INST]"
            awaiting_question = False
        elif prompt:
            prompt += f" <s>[INST] {content} [/INST]"
        else:
            prompt = f"<s>[INST] {content} [/INST]"
    if awaiting_question:
        prompt += " [/INST]"
    return prompt


def _where(index: int) -> str:
    return f"messages[{index}].content"


def _lua_text(message: Any, key: str) -> str:
    """What Lua's ``%s`` prints for ``message[key]`` (Kong formats whatever it finds; a string
    or an array message has no such field)."""
    if not isinstance(message, Mapping) or key not in message:
        return "nil"
    value = message[key]
    if isinstance(value, str):
        return value
    if value is None:
        return "userdata: NULL"  # cjson.null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:.14g}"
    return "table: 0x00000000"  # an address in Kong; any fixed text here


def encode(body: Mapping[str, Any], exchange: Exchange) -> dict[str, Any]:
    behaviour = exchange.behaviour
    if exchange.chat:
        inputs = chat_prompt(body["messages"], behaviour)
    else:
        inputs = completion_prompt(body["prompt"], behaviour)
    parameters = tuning_options(body, max_tokens_as="max_new_tokens")
    parameters["stream"] = exchange.stream
    request: dict[str, Any] = {"inputs": inputs, "parameters": parameters}
    if exchange.stream and not behaviour.raw_stream_flag_only_in_parameters:
        request["stream"] = True  # TGI's `/` and the HF Inference API read the top-level flag
    return request


# --- response ---------------------------------------------------------------------------------


def decode(upstream_body: bytes, exchange: Exchange, stamp: ReplyStamp) -> bytes:
    """Kong's raw reply has no ``id`` or ``created``, fixed mode included: ``stamp`` is unused."""
    value = parse_upstream(upstream_body, NOT_JSON)
    if exchange.behaviour.raw_reads_only_kong_shape:
        text = _kong_generated_text(value)
    else:
        text = _generated_text(value)
    content = _after_last_inst(text)
    reply: dict[str, Any]
    if exchange.chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": content}}
        reply = {"choices": [choice], "object": "chat.completion"}
    else:
        reply = {"choices": [{"index": 0, "text": content}], "object": "text_completion"}
    usage = _usage(value, exchange.behaviour)
    if usage is not _ABSENT:
        reply["usage"] = usage
    return reply_json(reply, exchange.behaviour)


def _after_last_inst(text: str) -> str:
    """The text after the last ``[/INST]``, trimmed the way Lua trims (Penlight splits "" into no
    pieces at all, which Kong reports)."""
    if text == "":
        raise TransformError(NO_REPLY)
    return text.split("[/INST]")[-1].strip(LUA_SPACE)


def _generated_text(value: Any) -> str:
    """Every shape a real raw upstream answers with (fixed mode)."""
    if isinstance(value, Mapping):
        if "data" in value:
            return _first_generation(value["data"])
        if "generated_text" in value:  # TGI /generate
            return _text_of(value)
        if "responses" in value:  # Kong's docs: "expects the response in the responses field"
            responses = value["responses"]
            return responses if isinstance(responses, str) else _first_generation(responses)
        raise TransformError(UNPARSEABLE)
    return _first_generation(value)  # HF Inference API: [{"generated_text": ...}]


def _first_generation(items: Any) -> str:
    if not isinstance(items, list) or len(items) > 1:
        raise TransformError(UNPARSEABLE)
    if not items:
        raise TransformError(EMPTY)
    first = items[0]
    return first if isinstance(first, str) else _text_of(first)


def _text_of(item: Any) -> str:
    text = item.get("generated_text") if isinstance(item, Mapping) else None
    if not isinstance(text, str):
        raise TransformError(EMPTY)
    return text


def _kong_generated_text(value: Any) -> str:
    """Kong's ``from_raw``: ``data`` with at most one element holding ``generated_text``, and
    Lua's idea of indexing whatever else arrives (a JSON null is a truthy userdata in Kong).
    Where Kong's LuaJIT raises, its error — location first — is the reason."""
    if value is False:
        raise TransformError(UNPARSEABLE)  # `not response_table`
    if not isinstance(value, Mapping | str | list):
        raise TransformError(_llama2_error(
            FROM_RAW_CHECK_LINE, f"attempt to index local 'response_table' ({_a(value)})"
        ))
    data = value.get("data", _ABSENT) if isinstance(value, Mapping) else _ABSENT
    if data is _ABSENT or data is False:
        raise TransformError(UNPARSEABLE)
    if not isinstance(data, Mapping | str | list):
        raise TransformError(_llama2_error(
            FROM_RAW_CHECK_LINE, f"attempt to get length of field 'data' ({_a(data)})"
        ))
    if _lua_length(data) > 1:
        raise TransformError(UNPARSEABLE)
    if not isinstance(data, list) or not data:  # data[1] is nil
        raise TransformError(_llama2_error(FROM_RAW_DATA_LINE, INDEX_NIL))
    first = data[0]
    if isinstance(first, str | list):
        raise TransformError(EMPTY)  # indexing a string or an array by name gives nil
    if not isinstance(first, Mapping):
        raise TransformError(_llama2_error(FROM_RAW_DATA_LINE, f"attempt to index {_a(first)}"))
    text = first.get("generated_text", _ABSENT)
    if text is _ABSENT or text is False:
        raise TransformError(EMPTY)
    if not isinstance(text, str):  # Penlight's stringx.split checks its argument
        raise TransformError(lua_error(
            PENLIGHT_STRINGX, PENLIGHT_ASSERT_LINE,
            f"argument 1 expected a 'string', got a '{lua_type(text)}'",
        ))
    return text


def _llama2_error(line: int, message: str) -> str:
    return lua_error(LLAMA2_LUA, line, message)


def _a(value: Any) -> str:
    return f"a {lua_type(value)} value"


def _lua_length(value: Any) -> int:
    """Lua's ``#``: a string's bytes, an array's elements; 0 for an object's string keys."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(value) if isinstance(value, list) else 0


def _usage(value: Any, behaviour: Behaviour) -> Any:
    """The upstream's own ``usage``, copied when it sent one."""
    if not isinstance(value, Mapping) or "usage" not in value:
        return _ABSENT
    usage = value["usage"]
    if behaviour.raw_reads_only_kong_shape:
        return usage if usage is not False else _ABSENT  # a JSON null is truthy in Kong's Lua
    return usage if isinstance(usage, Mapping) else _ABSENT


CODEC = Codec(RAW, encode, decode)
