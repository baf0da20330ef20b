"""The llama.cpp mock as llama.cpp c392e509 (2025-02-20, build b4748) answers: its ``/props``,
wrong-method, unknown-path and malformed-body answers (status, content type, exact text), and
every native and OpenAI-compatible body and stream chunk validated against ``fixtures/oas.yaml``.

Facts from that era's ``examples/server/server.cpp``/``utils.hpp``: httplib's error handler turns
every unmatched route (a wrong method included) into ``res_error`` with ``File Not Found``, JSON;
``json::parse`` failures and what ``oaicompat_completion_params_parse`` throws reach the exception
handler (500 ``server_error``); ``data.at("prompt")`` in ``handle_completions_impl``'s try is a 400.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from proxyproof import fixtures

pytestmark = pytest.mark.parametrize("mock", ["llamacpp"], indirect=True)

JSON = "application/json; charset=utf-8"
MESSAGES = [{"role": "user", "content": "What is 1+1?"}]
NOT_FOUND = {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}


def _error(code: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 500: "server_error"}[code]
    return {"error": {"code": code, "message": message, "type": kind}}


def _events(text: str) -> list[Any]:
    return [json.loads(f.removeprefix("data: ")) for f in text.split("\n\n")
            if f and f != "data: [DONE]"]


def test_props_pin_the_build(http: httpx.Client) -> None:
    props = http.get("/props")
    assert props.status_code == 200 and props.headers["content-type"] == JSON
    body = props.json()
    fixtures.validate("LlamaCppProps", body)
    assert body["build_info"] == "b4748-c392e5094"
    assert set(body) == {"default_generation_settings", "total_slots", "model_path",
                         "chat_template", "bos_token", "eos_token", "build_info"}
    v1 = http.post("/v1/chat/completions", json={"messages": MESSAGES}).json()
    assert v1["system_fingerprint"] == body["build_info"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("GET", "/completion", None, 404, NOT_FOUND),
        ("PUT", "/completion", None, 404, NOT_FOUND),
        ("GET", "/v1/chat/completions", None, 404, NOT_FOUND),
        ("POST", "/health", None, 404, NOT_FOUND),
        ("GET", "/nowhere", None, 404, NOT_FOUND),
        ("POST", "/completion", b"{bad", 500, None),
        ("POST", "/completion", b"", 500, _error(500, (
            "[json.exception.parse_error.101] parse error at line 1, column 1: attempting to "
            "parse an empty input; check that your input string or stream contains the expected "
            "JSON"))),
        ("POST", "/completion", b"{}", 400, _error(
            400, "[json.exception.out_of_range.403] key 'prompt' not found")),
        ("POST", "/completion", b"[1]", 400, _error(
            400, "[json.exception.type_error.304] cannot use at() with array")),
        ("POST", "/completion", b'{"prompt": []}', 400, _error(400, '"prompt" must not be empty')),
        ("POST", "/v1/chat/completions", b"{}", 500, _error(
            500, "[json.exception.out_of_range.403] key 'messages' not found")),
        ("POST", "/v1/chat/completions",
         json.dumps({"messages": MESSAGES, "n": 2}).encode(), 500,
         _error(500, "Only one completion choice is allowed")),
        ("POST", "/v1/completions", b"{}", 500, _error(500, '"prompt" is required')),
        ("POST", "/v1/completions", b'{"prompt": "x", "n": 3}', 500,
         _error(500, "Only one completion choice is allowed")),
    ],
)
def test_refusals_word_for_word(http: httpx.Client, method: str, path: str, body: bytes | None,
                                status: int, expected: Any) -> None:
    reply = http.request(method, path, content=body)
    assert reply.status_code == status
    assert reply.headers["content-type"] == JSON
    assert reply.headers["server"] == "llama.cpp"
    fixtures.validate("LlamaCppError", reply.json())
    if expected is not None:
        assert reply.json() == expected
    else:
        assert reply.json()["error"]["message"].startswith(
            "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error")


def test_empty_messages_are_a_200(http: httpx.Client) -> None:
    reply = http.post("/v1/chat/completions", json={"messages": []})
    assert reply.status_code == 200
    fixtures.validate("LlamaCppChatResponse", reply.json())


@pytest.mark.parametrize("extra", [{}, {"n_predict": 2}, {"stop": ["two"]},
                                   {"timings_per_token": True}, {"prompt": ["a b", [1, 2]]}])
def test_native_bodies_and_events_validate(http: httpx.Client, extra: dict[str, Any]) -> None:
    request = {"prompt": "Building a website", **extra}
    body = http.post("/completion", json=request).json()
    for result in body if isinstance(body, list) else [body]:
        fixtures.validate("LlamaCppCompletionResponse", result)
        assert {"index", "id_slot", "tokens", "timings"} <= set(result)
        assert "cache_n" not in result["timings"]  # a later build's field
    events = _events(http.post("/completion", json={**request, "stream": True}).text)
    for event in events:
        fixtures.validate("LlamaCppStreamEvent", event)
        assert ("timings" in event) == (event["stop"] or bool(extra.get("timings_per_token")))


@pytest.mark.parametrize("extra", [{}, {"max_tokens": 2}, {"stop": "two"},
                                   {"stream_options": {"include_usage": True}}])
def test_openai_routes_validate(http: httpx.Client, extra: dict[str, Any]) -> None:
    chat = {"model": "x", "messages": MESSAGES, **extra}
    fixtures.validate("LlamaCppChatResponse", http.post("/v1/chat/completions", json=chat).json())
    for event in _events(http.post("/v1/chat/completions", json={**chat, "stream": True}).text):
        fixtures.validate("LlamaCppChatChunk", event)
    text = {"model": "x", "prompt": "Say", **extra}
    fixtures.validate("LlamaCppTextCompletionResponse",
                      http.post("/v1/completions", json=text).json())
    for event in _events(http.post("/v1/completions", json={**text, "stream": True}).text):
        fixtures.validate("LlamaCppTextCompletionChunk", event)
    fixtures.validate("LlamaCppModelList", http.get("/v1/models").json())


def test_the_official_client_on_the_openai_routes(mock) -> None:
    with openai.OpenAI(base_url=mock.url + "/v1", api_key="none", max_retries=0) as sdk:
        reply = sdk.chat.completions.create(model="anything", messages=MESSAGES)
        assert reply.choices[0].message.content and reply.system_fingerprint == "b4748-c392e5094"
        stream = sdk.chat.completions.create(model="anything", messages=MESSAGES, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == reply.choices[0].message.content
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(model="anything", messages=MESSAGES, n=2)
        assert raised.value.status_code == 500
