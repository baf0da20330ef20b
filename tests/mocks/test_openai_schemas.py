"""Every body the OpenAI-style mock emits validates against its schema in ``fixtures/oas.yaml``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

MESSAGES = [{"role": "user", "content": "What is 1+1?"}]
Validate = Callable[[str, Any], None]
Sse = Callable[[str], list[Any]]

# Request variations that change the shape or the finish of a reply.
VARIANTS = [
    pytest.param({}, id="natural-end"),
    pytest.param({"max_tokens": 2}, id="length"),
    pytest.param({"stop": "two", "seed": 3}, id="stop-sequence"),
    pytest.param({"max_completion_tokens": 1, "stop": ["a", "b"]}, id="limit-and-stops"),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_chat_bodies_and_chunks(http: httpx.Client, schema: Validate, sse: Sse, variant) -> None:
    request = {"model": "llama2", "messages": MESSAGES, **variant}
    whole = http.post("/v1/chat/completions", json=request)
    assert whole.status_code == 200
    schema("OpenAIChatResponse", whole.json())
    for options in ({}, {"stream_options": {"include_usage": True}}):
        stream = http.post("/v1/chat/completions", json={**request, "stream": True, **options})
        events = sse(stream.text)
        assert events[-1] == "[DONE]"
        for chunk in events[:-1]:
            schema("OpenAIChatChunk", chunk)


@pytest.mark.parametrize("variant", VARIANTS)
def test_completion_bodies_and_chunks(
    http: httpx.Client, schema: Validate, sse: Sse, variant
) -> None:
    request = {"model": "llama2", "prompt": "Say something", **variant}
    whole = http.post("/v1/completions", json=request)
    assert whole.status_code == 200
    schema("OpenAICompletionResponse", whole.json())
    for options in ({}, {"stream_options": {"include_usage": True}}):
        stream = http.post("/v1/completions", json={**request, "stream": True, **options})
        events = sse(stream.text)
        assert events[-1] == "[DONE]"
        for chunk in events[:-1]:
            schema("OpenAICompletionChunk", chunk)


def test_models_and_embeddings(http: httpx.Client, schema: Validate) -> None:
    schema("OpenAIModelList", http.get("/v1/models").json())
    schema("OpenAIModel", http.get("/v1/models/llama2").json())
    for request in (
        {"model": "m", "input": "hello"},
        {"model": "m", "input": ["a", "b"], "dimensions": 16},
        {"model": "m", "input": [1, 2, 3], "encoding_format": "base64"},
    ):
        reply = http.post("/v1/embeddings", json=request)
        assert reply.status_code == 200
        schema("OpenAIEmbeddingsResponse", reply.json())


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/chat/completions", {"model": "nope", "messages": MESSAGES}, 404),
        ("POST", "/v1/chat/completions", {"model": "llama2"}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": []}, 400),
        ("POST", "/v1/chat/completions", {"messages": MESSAGES}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": "hi"}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": [{"content": "x"}]}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": MESSAGES, "n": 129}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": MESSAGES,
                                          "max_tokens": "9"}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": MESSAGES,
                                          "stop": ["a", "b", "c", "d", "e"]}, 400),
        ("POST", "/v1/chat/completions", {"model": "llama2", "messages": MESSAGES,
                                          "stream_options": {"include_usage": True}}, 400),
        ("POST", "/v1/chat/completions", "not json", 400),
        ("POST", "/v1/completions", {"model": "llama2"}, 400),
        ("POST", "/v1/completions", {"model": "llama2", "prompt": ["a", "b"]}, 400),
        ("POST", "/v1/embeddings", {"model": "m"}, 400),
        ("POST", "/v1/embeddings", {"model": "m", "input": "x", "dimensions": 0}, 400),
        ("GET", "/v1/models/nope", None, 404),
        ("GET", "/v1/nowhere", None, 404),
        ("GET", "/v1/chat/completions", None, 405),
    ],
)
def test_error_bodies(
    http: httpx.Client, schema: Validate, method: str, path: str, body: Any, status: int
) -> None:
    content = body.encode() if isinstance(body, str) else None
    reply = http.request(method, path, json=None if content else body, content=content)
    assert reply.status_code == status
    schema("OpenAIError", reply.json())
    assert reply.json()["error"]["message"]


@pytest.mark.parametrize(
    "mock", [{"name": "openai", "api_key": "secret-key-123"}], indirect=True
)
def test_auth_and_fault_error_bodies(mock, http: httpx.Client, schema: Validate, sse: Sse) -> None:
    request = {"model": "llama2", "messages": MESSAGES}
    for headers in ({}, {"Authorization": "Bearer wrong-key-456789"}):
        reply = http.post("/v1/chat/completions", json=request, headers=headers)
        assert reply.status_code == 401
        schema("OpenAIError", reply.json())
        assert "secret-key-123" not in reply.text and "wrong-key-456789" not in reply.text
    auth = {"Authorization": "Bearer secret-key-123"}
    for fault in ({"kind": "rate_limit"}, {"kind": "loading", "estimated_time": 5}):
        mock.control.script(fault=fault, times=1)
        reply = http.post("/v1/chat/completions", json=request, headers=auth)
        assert reply.status_code in (429, 503)
        schema("OpenAIError", reply.json())
    mock.control.fault("stream_error", after_frames=1, message="boom", times=1)
    events = sse(http.post("/v1/chat/completions", json={**request, "stream": True},
                           headers=auth).text)
    schema("OpenAIChatChunk", events[0])
    schema("OpenAIError", events[-1])
