"""Parsing the client body and Kong's checks in Kong's order, as pure functions
(docs/kong-behaviour.md#request-body, #request-checks, #model-and-tuning)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from proxy_support import CHAT, COMPLETIONS

from proxyproof.proxy_impl.behaviour import FIXED, KONG, Behaviour
from proxyproof.proxy_impl.request import NO_PROMPTS, Plan, Rejection, parse_body, plan_request

CHAT_BODY = {"messages": [{"role": "user", "content": "hi"}]}


def plan(
    body: dict[str, Any] | None,
    *,
    route_type: str = CHAT,
    model: str | None = "llama2",
    tuning: dict[str, Any] | None = None,
    fmt: str = "raw",
    streaming: str = "allow",
    behaviour: Behaviour = FIXED,
) -> Plan | Rejection:
    return plan_request(
        body,
        route_type=route_type,
        configured_model=model,
        configured_tuning=tuning or {},
        llama2_format=fmt,
        response_streaming=streaming,
        behaviour=behaviour,
    )


def rejected(result: Plan | Rejection) -> str:
    assert isinstance(result, Rejection), result
    return result.message


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"", None),
        (b"not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', None),
        (b'{"prompt": NaN}', None),
        (b'{"prompt": "x"}', "text/plain"),
        (b"\xff\xfe", None),
        (None, None),  # larger than the server reads
    ],
)
def test_bodies_that_do_not_parse(raw, content_type):
    assert parse_body(raw, content_type, 8192, FIXED) is None


def test_json_with_charset_and_without_content_type():
    assert parse_body(b'{"a":1}', "Application/JSON; charset=utf-8", 0, FIXED) == {"a": 1}
    assert parse_body(b'{"a":1}', None, 0, FIXED) == {"a": 1}


def test_size_limit_fixed_always_kong_only_above_nginx_buffer():
    body = json.dumps({"prompt": "x" * 5000}).encode()
    assert parse_body(body, None, 4096, FIXED) is None
    assert parse_body(body, None, 4096, KONG) is not None  # under 8 KiB nginx keeps it in memory
    big = json.dumps({"prompt": "x" * 9000}).encode()
    assert parse_body(big, None, 8192, KONG) is None
    assert parse_body(big, None, 0, FIXED) is not None  # 0: no limit


def test_form_bodies_only_in_kong_mode():
    raw = b"prompt=hi&tag=a&tag=b"
    form = "application/x-www-form-urlencoded"
    assert parse_body(raw, form, 0, KONG) == {"prompt": "hi", "tag": ["a", "b"]}
    assert parse_body(raw, form, 0, FIXED) is None


# --- checks, in Kong's order ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"messages": []},
        {"messages": {}},
        {"messages": "hi"},
        {"prompt": 3},
        {"segassem": [{"role": "user", "content": "x"}], "tpmorp": "x"},
    ],
)
def test_no_valid_prompts(body):
    assert rejected(plan(body)) == NO_PROMPTS


def test_check_order_prompts_before_model_before_format():
    both = {"messages": [{"role": "user", "content": "x"}], "prompt": "x", "model": "other"}
    assert rejected(plan(both)) == "cannot use own model - must be: llama2"
    assert rejected(plan({**both, "model": "llama2"})) == (
        "request matches multiple LLM request formats"
    )
    assert rejected(plan({"model": "other"})) == NO_PROMPTS


def test_format_mismatch_messages():
    assert rejected(plan(CHAT_BODY, route_type=COMPLETIONS)) == (
        "[llm/v1/chat] message format is not compatible with [llm/v1/completions] route type"
    )
    assert rejected(plan({"prompt": "x"}, route_type=CHAT)) == (
        "[llm/v1/completions] message format is not compatible with [llm/v1/chat] route type"
    )


@pytest.mark.parametrize("client_model", [None, 5, "", "llama2", False])
def test_client_model_that_is_not_a_different_name_is_fine(client_model):
    result = plan({**CHAT_BODY, "model": client_model})
    assert isinstance(result, Plan) and result.model == "llama2"


def test_kong_mode_ignores_null_and_non_string_models_too():
    for client_model in (None, 5, ""):
        assert isinstance(plan({**CHAT_BODY, "model": client_model}, behaviour=KONG), Plan)


def test_model_from_the_client_when_the_config_has_none():
    result = plan({**CHAT_BODY, "model": "try-to-override-the-model"}, model=None)
    assert isinstance(result, Plan) and result.model == "try-to-override-the-model"
    assert rejected(plan(CHAT_BODY, model=None)) == (
        "model parameter not found in request, nor in gateway configuration"
    )
    assert rejected(plan({**CHAT_BODY, "model": ""}, model=None)) == (
        "model parameter not found in request, nor in gateway configuration"
    )
    kong = plan({**CHAT_BODY, "model": ""}, model=None, behaviour=KONG)
    assert isinstance(kong, Plan) and kong.model == ""


def test_config_tuning_wins_and_other_fields_are_kept():
    body = {"prompt": "x", "max_tokens": 256, "temperature": 0.1, "top_p": 0.2, "extra": True}
    result = plan(body, route_type=COMPLETIONS, tuning={"max_tokens": 1024, "top_p": 0.5})
    assert isinstance(result, Plan)
    assert result.body == {
        "prompt": "x",
        "max_tokens": 1024,
        "temperature": 0.1,
        "top_p": 0.5,
        "extra": True,
    }


@pytest.mark.parametrize(
    ("stream", "fixed", "kong"),
    [(True, True, True), (False, False, False), (None, False, True), (0, False, True),
     ("", False, True), ("false", False, True)],
)  # fmt: skip
def test_stream_decision(stream, fixed, kong):
    body = {**CHAT_BODY, "stream": stream}
    assert plan(body).stream is fixed
    assert plan(body, behaviour=KONG).stream is kong


def test_stream_absent_never_streams_and_always_forces_it():
    assert plan(CHAT_BODY, behaviour=KONG).stream is False
    forced = plan(CHAT_BODY, streaming="always")
    assert forced.stream is True and forced.body["stream"] is True


def test_deny_refuses_a_stream_request():
    assert rejected(plan({**CHAT_BODY, "stream": True}, streaming="deny")) == (
        "response streaming is not enabled for this LLM"
    )
    assert isinstance(plan(CHAT_BODY, streaming="deny"), Plan)


def test_empty_messages_beside_a_prompt():
    body = {"messages": [], "prompt": "x"}
    fixed = plan(body, route_type=COMPLETIONS)
    assert isinstance(fixed, Plan) and "messages" not in fixed.body
    kong = plan(body, route_type=COMPLETIONS, behaviour=KONG)
    assert isinstance(kong, Rejection) and kong.plain_text
    assert kong.message == (
        "cannot run raw 'prompt' and chat history 'messages' requests at the same time - "
        "refer to schema"
    )
    openai = plan(body, route_type=COMPLETIONS, fmt="openai", behaviour=KONG)
    assert isinstance(openai, Plan) and openai.body["messages"] == []
