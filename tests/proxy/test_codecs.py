"""The codecs, pure: Kong's 01-unit_spec.lua llama2 cases (Kong-compatibility mode gives Kong's
exact bodies, fixed mode the corrected ones) and the real response mappings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxy_support import CHAT, COMPLETIONS, kong_fixture

from proxyproof.proxy_impl.behaviour import FIXED, KONG, Behaviour
from proxyproof.proxy_impl.codecs import EncodeError, Exchange, TransformError, codec_for
from proxyproof.proxy_impl.model import ReplyStamp
from proxyproof.proxy_impl.tuning import merge_tuning

# The options Kong's unit spec configures for the llama2 formats.
UNIT_CHAT_OPTIONS = {"max_tokens": 512, "temperature": 0.5, "top_p": 1, "top_k": 40}
UNIT_COMPLETION_OPTIONS = {"max_tokens": 512, "temperature": 0.5}


def exchange(
    route_type: str,
    behaviour: Behaviour,
    *,
    model: str = "llama2",
    stream: bool = False,
    configured_max_tokens: int | None = None,
    effective_max_tokens: int | None = None,
) -> Exchange:
    return Exchange(
        route_type=route_type,
        model=model,
        stream=stream,
        configured_max_tokens=configured_max_tokens,
        effective_max_tokens=effective_max_tokens,
        behaviour=behaviour,
    )


def encode(fmt: str, body: dict[str, Any], route_type: str, behaviour: Behaviour, **kw: Any):
    return codec_for(fmt).encode(body, exchange(route_type, behaviour, **kw))


def decode(
    fmt: str,
    body: Any,
    route_type: str,
    behaviour: Behaviour,
    *,
    stamp: ReplyStamp | None = None,
    **kw: Any,
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = stamp or ReplyStamp.mint(route_type)
    return json.loads(codec_for(fmt).decode(raw, exchange(route_type, behaviour, **kw), stamp))


# --- 01-unit_spec: "converts to provider request format correctly" -----------------------------


def test_kong_raw_chat_request_is_kongs_exact_body():
    body = merge_tuning(kong_fixture("unit-request-chat.json"), UNIT_CHAT_OPTIONS)
    assert encode("raw", body, CHAT, KONG) == {
        "inputs": "<s>[INST] <<SYS>> You are a mathematician. <</SYS>> What is 1 + 2? [/INST] "
        "<s>[INST] Multiply that by 2 [/INST] <s>[INST] Why can't you divide by zero? [/INST]",
        "parameters": {
            "max_new_tokens": 512,
            "temperature": 0.5,
            "top_k": 40,
            "top_p": 1,
            "stream": False,
        },
    }


def test_kong_raw_completions_request_keeps_the_sys_typo():
    body = merge_tuning(kong_fixture("unit-request-completions.json"), UNIT_COMPLETION_OPTIONS)
    assert encode("raw", body, COMPLETIONS, KONG) == {
        "inputs": "<s> [INST] <<SYS>> You are a helpful assistant. <<SYS>> "
        "Explain why you can't divide by zero? [/INST]",
        "parameters": {"max_new_tokens": 512, "temperature": 0.5, "stream": False},
    }


def test_fixed_raw_chat_request_keeps_assistant_turns():
    body = merge_tuning(kong_fixture("unit-request-chat.json"), UNIT_CHAT_OPTIONS)
    encoded = encode("raw", body, CHAT, FIXED)
    assert encoded["inputs"] == (
        "<s>[INST] <<SYS>> You are a mathematician. <</SYS>> What is 1 + 2? [/INST] "
        "The sum of 1 + 2 is 3. If you have any more math questions or if there's anything else "
        "I can help you with, feel free to ask! </s> <s>[INST] Multiply that by 2 [/INST] "
        "Certainly! If you multiply 3 by 2, the result is 6. If you have any more questions or if "
        "there's anything else I can help you with, feel free to ask! </s> "
        "<s>[INST] Why can't you divide by zero? [/INST]"
    )
    assert encoded["parameters"] == {
        "max_new_tokens": 512,
        "temperature": 0.5,
        "top_p": 1,
        "top_k": 40,
        "stream": False,
    }
    assert "model" not in encoded


def test_fixed_raw_completions_request_closes_the_system_block():
    body = merge_tuning(kong_fixture("unit-request-completions.json"), UNIT_COMPLETION_OPTIONS)
    assert encode("raw", body, COMPLETIONS, FIXED)["inputs"] == (
        "<s> [INST] <<SYS>> You are a helpful assistant. <</SYS>> "
        "Explain why you can't divide by zero? [/INST]"
    )


@pytest.mark.parametrize("behaviour", [FIXED, KONG], ids=["fixed", "kong"])
def test_ollama_chat_request_is_kongs_body(behaviour):
    request = kong_fixture("unit-request-chat.json")
    body = merge_tuning(request, UNIT_COMPLETION_OPTIONS)
    assert encode("ollama", body, CHAT, behaviour) == {
        "model": "llama2",
        "messages": request["messages"],
        "stream": False,
        "options": {"num_predict": 512, "temperature": 0.5},
    }


@pytest.mark.parametrize("behaviour", [FIXED, KONG], ids=["fixed", "kong"])
def test_ollama_completions_request_is_kongs_body(behaviour):
    body = merge_tuning(kong_fixture("unit-request-completions.json"), UNIT_COMPLETION_OPTIONS)
    assert encode("ollama", body, COMPLETIONS, behaviour) == {
        "model": "llama2",
        "prompt": "Explain why you can't divide by zero?",
        "stream": False,
        "options": {"num_predict": 512, "temperature": 0.5},
    }


# --- the fixed chat template, message by message ------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "inputs"),
    [
        ([("user", "Hi")], "<s>[INST] Hi [/INST]"),
        ([("system", "S")], "<s>[INST] <<SYS>> S <</SYS>> [/INST]"),
        (
            [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")],
            "<s>[INST] Q1 [/INST] A1 </s> <s>[INST] Q2 [/INST]",
        ),
        (
            [("system", "S"), ("assistant", "A"), ("user", "Q")],
            "<s>[INST] <<SYS>> S <</SYS>> [/INST] A </s> <s>[INST] Q [/INST]",
        ),
        (
            [("assistant", "A"), ("user", "Q")],
            "<s>[INST] [/INST] A </s> <s>[INST] Q [/INST]",
        ),
        (  # Kong's own fixture answers with role `system`: still an answer slot
            [("system", "S"), ("user", "Q1"), ("system", "A1"), ("user", "Q2")],
            "<s>[INST] <<SYS>> S <</SYS>> Q1 [/INST] A1 </s> <s>[INST] Q2 [/INST]",
        ),
    ],
)
def test_fixed_chat_template(messages, inputs):
    body = {"messages": [{"role": role, "content": content} for role, content in messages]}
    assert encode("raw", body, CHAT, FIXED)["inputs"] == inputs


def test_kong_chat_template_wraps_a_lone_user_message_in_sys_and_never_closes():
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    assert encode("raw", body, CHAT, KONG)["inputs"] == "<s>[INST] <<SYS>> Hi <</SYS>>"


@pytest.mark.parametrize("content", [None, ["a", "b"], {"type": "text"}, 3])
def test_fixed_raw_refuses_non_string_content(content):
    body = {"messages": [{"role": "user", "content": content}]}
    with pytest.raises(EncodeError):
        encode("raw", body, CHAT, FIXED)


def test_kong_raw_prints_non_string_content_the_lua_way():
    body = {"messages": [{"role": "system", "content": None}, {"role": "user", "content": 3}]}
    assert encode("raw", body, CHAT, KONG)["inputs"] == (
        "<s>[INST] <<SYS>> userdata: NULL <</SYS>> 3 [/INST]"
    )


def test_raw_stream_flags():
    body = {"prompt": "p"}
    assert encode("raw", body, COMPLETIONS, KONG, stream=True)["parameters"]["stream"] is True
    assert "stream" not in encode("raw", body, COMPLETIONS, KONG, stream=True)
    fixed = encode("raw", body, COMPLETIONS, FIXED, stream=True)
    assert fixed["stream"] is True and fixed["parameters"]["stream"] is True


def test_ollama_fixed_extension_maps_stop_and_seed():
    body = {"prompt": "p", "stop": "END", "seed": 7, "format": "json", "keep_alive": 0}
    fixed = encode("ollama", body, COMPLETIONS, FIXED)
    assert fixed["options"] == {"stop": ["END"], "seed": 7}
    assert "format" not in fixed and "keep_alive" not in fixed
    assert encode("ollama", body, COMPLETIONS, KONG)["options"] == {}


def test_ollama_forwards_tools():
    tools = [{"type": "function", "function": {"name": "add"}}]
    body = {"messages": [{"role": "user", "content": "1+1"}], "tools": tools, "tool_choice": "auto"}
    encoded = encode("ollama", body, CHAT, FIXED)
    assert encoded["tools"] == tools and encoded["tool_choice"] == "auto"


@pytest.mark.parametrize("behaviour", [FIXED, KONG], ids=["fixed", "kong"])
def test_openai_request_forwards_the_body_with_model_and_without_top_k(behaviour):
    body = {"messages": [{"role": "user", "content": "hi"}], "top_k": 5, "seed": 1, "user": "u"}
    assert encode("openai", body, CHAT, behaviour, model="m") == {
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 1,
        "user": "u",
        "model": "m",
        "stream": False,
    }


# --- 01-unit_spec: "converts from provider response format correctly" --------------------------


@pytest.mark.parametrize("behaviour", [FIXED, KONG], ids=["fixed", "kong"])
def test_raw_chat_response(behaviour):
    reply = decode("raw", kong_fixture("unit-real-raw-chat.json"), CHAT, behaviour)
    assert reply == {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "You cannot divide by zero because it is not a valid operation "
                    "in mathematics.",
                },
            }
        ],
        "object": "chat.completion",
    }


@pytest.mark.parametrize("behaviour", [FIXED, KONG], ids=["fixed", "kong"])
def test_raw_completions_response(behaviour):
    reply = decode("raw", kong_fixture("unit-real-raw-completions.json"), COMPLETIONS, behaviour)
    assert reply == {
        "choices": [
            {
                "index": 0,
                "text": "You cannot divide by zero because it is not a valid operation in "
                "mathematics.",
            }
        ],
        "object": "text_completion",
    }
    assert "model" not in reply


def test_kong_ollama_chat_response():
    reply = decode(
        "ollama", kong_fixture("unit-real-ollama-chat.json"), CHAT, KONG, configured_max_tokens=512
    )
    assert reply == {
        "object": "chat.completion",
        "created": "2024-01-15T08:13:38.876196Z",
        "model": "llama2",
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "You cannot divide by zero because it is not a valid operation "
                    "in mathematics.",
                },
            }
        ],
        "usage": {"prompt_tokens": 26, "completion_tokens": 100, "total_tokens": 126},
    }


def test_kong_ollama_completions_response_has_no_finish_reason():
    reply = decode("ollama", kong_fixture("unit-real-ollama-completions.json"), COMPLETIONS, KONG)
    assert reply["choices"] == [{"index": 0, "text": "Because I said so."}]
    assert reply["model"] == "llama2"
    assert reply["usage"] == {"prompt_tokens": 26, "completion_tokens": 100, "total_tokens": 126}


def test_fixed_ollama_chat_response_is_openai_shaped():
    reply = decode("ollama", kong_fixture("unit-real-ollama-chat.json"), CHAT, FIXED)
    assert reply["id"].startswith("chatcmpl-")
    assert reply["created"] == 1705306418  # 2024-01-15T08:13:38Z as epoch seconds
    assert reply["model"] == "llama2"
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["choices"][0]["message"]["content"].startswith("You cannot divide by zero")
    assert reply["usage"] == {"prompt_tokens": 26, "completion_tokens": 100, "total_tokens": 126}


def test_fixed_ollama_completions_response():
    reply = decode("ollama", kong_fixture("unit-real-ollama-completions.json"), COMPLETIONS, FIXED)
    assert reply["id"].startswith("cmpl-")
    assert reply["object"] == "text_completion"
    assert reply["choices"] == [{"index": 0, "text": "Because I said so.", "finish_reason": "stop"}]
    assert reply["usage"] == {"prompt_tokens": 26, "completion_tokens": 100, "total_tokens": 126}


def test_ollama_finish_reason_rules():
    done = {"model": "m", "message": {"role": "assistant", "content": "x"}, "eval_count": 8}
    # fixed: Ollama's own done_reason first, then the effective (client or config) limit
    assert (
        decode("ollama", {**done, "done_reason": "length"}, CHAT, FIXED)["choices"][0][
            "finish_reason"
        ]
        == "length"
    )
    limited = decode("ollama", done, CHAT, FIXED, effective_max_tokens=8)
    assert limited["choices"][0]["finish_reason"] == "length"
    # Kong: done_reason ignored, and only the configured max_tokens counts
    kong = decode("ollama", {**done, "done_reason": "length"}, CHAT, KONG, effective_max_tokens=8)
    assert kong["choices"][0]["finish_reason"] == "stop"
    kong = decode("ollama", done, CHAT, KONG, configured_max_tokens=8)
    assert kong["choices"][0]["finish_reason"] == "length"


def test_fixed_ollama_reply_takes_its_id_and_a_missing_created_from_the_stamp():
    body = {"model": "m", "response": "x"}  # no created_at
    reply = decode("ollama", body, COMPLETIONS, FIXED, stamp=ReplyStamp("cmpl-given", 42))
    assert (reply["id"], reply["created"]) == ("cmpl-given", 42)


def test_fixed_ollama_created_handles_nanoseconds_and_offsets():
    body = {"model": "m", "response": "x", "created_at": "2025-08-16T21:50:45.146929735Z"}
    assert decode("ollama", body, COMPLETIONS, FIXED)["created"] == 1755381045
    body["created_at"] = "2025-08-16T23:50:45.1+02:00"
    assert decode("ollama", body, COMPLETIONS, FIXED)["created"] == 1755381045


# --- raw response shapes and Kong's errors -----------------------------------------------------

HF_API = [{"generated_text": "<s>[INST] hi [/INST] Hello!"}]
TGI = {"generated_text": " Hello!", "details": {"finish_reason": "eos_token"}}
DOCS_RESPONSES = {"responses": [{"generated_text": "[/INST] Hello!"}]}


@pytest.mark.parametrize("body", [HF_API, TGI, DOCS_RESPONSES, {"responses": "Hello!"}])
def test_fixed_raw_reads_every_real_upstream_shape(body):
    reply = decode("raw", body, CHAT, FIXED)
    assert reply["choices"][0]["message"]["content"] == "Hello!"


@pytest.mark.parametrize("body", [HF_API, TGI, DOCS_RESPONSES])
def test_kong_raw_reads_only_the_data_shape(body):
    with pytest.raises(TransformError, match="cannot parse response from llama2 endpoint"):
        decode("raw", body, CHAT, KONG)


@pytest.mark.parametrize(
    ("body", "behaviour", "reason"),
    [
        (b"<html>", FIXED, "failed to decode llama2 response"),
        (b"", KONG, "failed to decode llama2 response"),
        ({"nothing": 1}, FIXED, "cannot parse response from llama2 endpoint"),
        ({"data": [{}, {}]}, KONG, "cannot parse response from llama2 endpoint"),
        ({"data": [{"text": "x"}]}, KONG, "response data is empty from llama2 endpoint"),
        ({"data": []}, FIXED, "response data is empty from llama2 endpoint"),
        (
            {"data": []},
            KONG,
            "/usr/local/share/lua/5.1/kong/llm/drivers/llama2.lua:63: attempt to index a nil value",
        ),
        ({"data": [{"generated_text": ""}]}, KONG, "response did not contain a system reply"),
    ],
)
def test_raw_decode_errors(body, behaviour, reason):
    with pytest.raises(TransformError) as failure:
        decode("raw", body, CHAT, behaviour)
    assert str(failure.value) == reason


def test_raw_keeps_text_after_the_last_inst_trimmed():
    reply = decode("raw", kong_fixture("llama2-raw-good.json"), COMPLETIONS, KONG)
    assert reply["choices"][0]["text"] == "Is a well known font."
    no_inst = decode("raw", {"data": [{"generated_text": "  just text \n"}]}, COMPLETIONS, FIXED)
    assert no_inst["choices"][0]["text"] == "just text"


def test_raw_copies_upstream_usage():
    body = {"data": [{"generated_text": "x"}], "usage": {"prompt_tokens": 1}}
    assert decode("raw", body, CHAT, FIXED)["usage"] == {"prompt_tokens": 1}


def test_ollama_decode_error():
    with pytest.raises(TransformError, match="^failed to decode ollama response$"):
        decode("ollama", b"{not json", CHAT, FIXED)


def test_openai_response_is_returned_byte_for_byte():
    upstream = b'{"id":"x", "choices":[{"index":0}],\n"extra":true}'
    ex = exchange(CHAT, FIXED)
    assert codec_for("openai").decode(upstream, ex, ReplyStamp("unused", 0)) == upstream


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"nope", "failed to decode llm/v1/chat response"),
        (b'{"id":"x"}', "'choices' not in llm/v1/chat response"),
    ],
)
def test_openai_response_errors(body, reason):
    with pytest.raises(TransformError) as failure:
        codec_for("openai").decode(body, exchange(CHAT, FIXED), ReplyStamp("unused", 0))
    assert str(failure.value) == reason
