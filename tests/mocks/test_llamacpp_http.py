"""The llama.cpp mock over HTTP: raw httpx against every native endpoint, the ``openai`` client
against ``/v1``, SSE framing, schemas, auth and the ``Server`` header."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from proxyproof import fixtures
from proxyproof.mocks import generation
from proxyproof.mocks.app import run_mock

ALIAS = "llama-2-7b-chat"


@pytest.fixture(scope="module")
def mock() -> Iterator[Any]:
    with run_mock("llamacpp", models=(ALIAS,)) as server:
        yield server


@pytest.fixture(scope="module")
def http(mock: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as session:
        yield session


def sse(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks[:-1])
    assert "[DONE]" not in response.text
    return [json.loads(block[len("data: "):]) for block in blocks[:-1]]


def test_completion_and_its_stream(http: httpx.Client) -> None:
    request = {"prompt": "Building a website can be done in", "n_predict": 6}
    whole = http.post("/completion", json=request)
    assert whole.headers["server"] == "llama.cpp"
    body = whole.json()
    fixtures.validate("LlamaCppCompletionResponse", body)
    assert body["content"] == generation.generate(ALIAS, request["prompt"], prompt_tokens=0,
                                                  max_tokens=6).text
    assert (body["stop_type"], body["tokens_predicted"], body["model"]) == ("limit", 6, ALIAS)

    events = sse(http.post("/completions", json={**request, "stream": True}))
    for event in events:
        fixtures.validate("LlamaCppStreamEvent", event)
    assert "".join(e["content"] for e in events) == body["content"]
    assert [e["stop"] for e in events] == [False] * 6 + [True]


def test_stop_words(http: httpx.Client) -> None:
    full = generation.generate(ALIAS, "Tell me", prompt_tokens=0).text
    word = full.split()[1]
    body = http.post("/completion", json={"prompt": "Tell me", "stop": [word]}).json()
    assert (body["stop_type"], body["stopping_word"]) == ("word", word)
    assert word not in body["content"]


def test_health_props_tokenize_detokenize(http: httpx.Client) -> None:
    health = http.get("/health")
    assert health.json() == {"status": "ok"} and health.headers["server"] == "llama.cpp"
    fixtures.validate("LlamaCppHealth", health.json())
    assert http.get("/v1/health").json() == {"status": "ok"}
    fixtures.validate("LlamaCppProps", http.get("/props").json())
    tokens = http.post("/tokenize", json={"content": "Hello world", "with_pieces": True}).json()
    fixtures.validate("LlamaCppTokenizeResponse", tokens)
    assert [t["piece"] for t in tokens["tokens"]] == ["Hello", " world"]
    ids = http.post("/completion", json={"prompt": "x", "return_tokens": True}).json()
    text = http.post("/detokenize", json={"tokens": ids["tokens"]}).json()
    fixtures.validate("LlamaCppDetokenizeResponse", text)
    assert text["content"] == ids["content"]
    fixtures.validate("LlamaCppModelList", http.get("/v1/models").json())


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "kind"),
    [
        ("GET", "/no/such/route", None, 404, "not_found_error"),
        ("POST", "/completion", b"definitely not json", 500, "server_error"),
        ("POST", "/completion", b'{"n_predict": 4}', 400, "invalid_request_error"),
        ("POST", "/completion", b'{"prompt": {"no": 1}}', 400, "invalid_request_error"),
    ],
)
def test_errors_are_nested_with_the_real_codes(http: httpx.Client, method: str, path: str,
                                               content: bytes | None, status: int,
                                               kind: str) -> None:
    response = http.request(method, path, content=content,
                            headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.headers["server"] == "llama.cpp"
    fixtures.validate("LlamaCppError", response.json())
    assert response.json()["error"]["code"] == status
    assert response.json()["error"]["type"] == kind


def test_raw_mode_for_kong(http: httpx.Client) -> None:
    inputs = "<s>[INST] <<SYS>> You are a helpful assistant. <</SYS>> Hi [/INST]"
    request = {"inputs": inputs, "parameters": {"max_new_tokens": 5, "top_p": 1.0, "top_k": 40}}
    body = http.post("/raw", json=request).json()
    fixtures.validate("RawKongResponse", body)
    answer = generation.generate(ALIAS, inputs, prompt_tokens=0, max_tokens=5).text
    assert body["data"][0]["generated_text"] == inputs + answer
    events = sse(http.post("/raw", json={**request, "stream": True}))
    for event in events:
        fixtures.validate("LlamaCppStreamEvent", event)
    assert "".join(e["content"] for e in events) == answer
    assert events[-1]["stop"] is True


def test_openai_client_against_v1(mock: Any) -> None:
    client = openai.OpenAI(base_url=f"{mock.url}/v1", api_key="sk-no-key-required",
                           max_retries=0)
    chat = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert chat.model == ALIAS and chat.choices[0].finish_reason == "length"
    stream = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
        stream=True,
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == chat.choices[0].message.content
    completion = client.completions.create(model="anything", prompt="Once upon", max_tokens=3)
    assert completion.choices[0].text == generation.generate(
        ALIAS, "Once upon", prompt_tokens=0, max_tokens=3).text
    assert [m.id for m in client.models.list()] == [ALIAS]


def test_api_key_by_bearer_or_x_api_key() -> None:
    with run_mock("llamacpp", api_key="s3cret") as server, httpx.Client(
        base_url=server.url, timeout=10
    ) as session:
        request = {"prompt": "x", "n_predict": 1}
        denied = session.post("/completion", json=request)
        assert denied.status_code == 401
        assert denied.json() == {"error": {"code": 401, "message": "Invalid API Key",
                                           "type": "authentication_error"}}
        assert denied.headers["server"] == "llama.cpp"
        wrong = session.post("/completion", json=request, headers={"X-Api-Key": "nope"})
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        bearer = session.post("/completion", json=request,
                              headers={"Authorization": "Bearer s3cret"})
        assert bearer.status_code == 200
        header = session.post("/completion", json=request, headers={"X-Api-Key": "s3cret"})
        assert header.status_code == 200
        assert session.get("/health").status_code == 200  # public
        assert session.get("/v1/models").status_code == 200  # public


# --- through the control API ---------------------------------------------------------------


def test_loading_fault_is_the_503_unavailable_error(mock: Any, http: httpx.Client) -> None:
    mock.control.fault("loading", match={"path": "/health"}, times=1)
    loading = http.get("/health")
    assert loading.status_code == 503
    assert loading.json() == {"error": {"code": 503, "message": "Loading model",
                                        "type": "unavailable_error"}}
    assert loading.headers["server"] == "llama.cpp"
    assert http.get("/health").json() == {"status": "ok"}  # then ready


def test_mid_stream_error_is_a_nested_error_event(mock: Any, http: httpx.Client) -> None:
    mock.control.fault("stream_error", match={"path": "/completion"}, times=1, after_frames=3,
                       message="slot crashed")
    events = sse(http.post("/completion", json={"prompt": "x", "stream": True}))
    assert len(events) == 4
    assert events[-1] == {"error": {"code": 500, "message": "slot crashed",
                                    "type": "server_error"}}
    fixtures.validate("LlamaCppError", events[-1])


def test_scripted_reply_through_raw_mode(mock: Any, http: httpx.Client) -> None:
    mock.control.script(match={"path": "/raw"}, times=1, reply=" Paris.")
    body = http.post("/raw", json={"inputs": "[INST] Capital of France? [/INST]"}).json()
    assert body == {"data": [{"generated_text": "[INST] Capital of France? [/INST] Paris."}]}
