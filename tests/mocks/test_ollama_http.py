"""The Ollama mock over HTTP: the official ``ollama`` client unmodified, raw framing, schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from proxyproof import fixtures
from proxyproof.mocks.app import run_mock

MODELS = ("llama2", "mistral:7b")
USER = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[Any]:
    with run_mock("ollama", models=MODELS) as server:
        yield server


@pytest.fixture(scope="module")
def client(mock: Any) -> ollama.Client:
    return ollama.Client(host=mock.url)


@pytest.fixture(scope="module")
def http(mock: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as session:
        yield session


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    text = response.text
    assert text.endswith("\n") and "\n\n" not in text and "data:" not in text
    return [json.loads(line) for line in text.splitlines()]


# --- the official client -------------------------------------------------------------------


def test_client_chat_and_its_stream_agree(client: ollama.Client) -> None:
    whole = client.chat(model="llama2", messages=USER, options={"seed": 7})
    parts = list(client.chat(model="llama2", messages=USER, options={"seed": 7}, stream=True))
    assert whole.message.role == "assistant" and whole.message.content
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert parts[-1].eval_count == whole.eval_count == len(parts) - 1


def test_client_generate_and_its_stream_agree(client: ollama.Client) -> None:
    whole = client.generate(model="mistral:7b", prompt="Count to three",
                            options={"num_predict": 4})
    parts = list(client.generate(model="mistral:7b", prompt="Count to three",
                                 options={"num_predict": 4}, stream=True))
    assert "".join(p.response for p in parts) == whole.response
    assert whole.done_reason == "length" and whole.eval_count == 4
    assert whole.context and isinstance(whole.total_duration, int)


def test_client_list_show_ps_embed(client: ollama.Client) -> None:
    listed = client.list()
    assert [m.model for m in listed.models] == ["llama2:latest", "mistral:7b"]
    assert all(m.size and m.modified_at and m.digest for m in listed.models)
    shown = client.show("llama2")
    assert shown.modelinfo and shown.details.family == "llama"
    assert [m.model for m in client.ps().models] == ["llama2:latest", "mistral:7b"]
    embedded = client.embed(model="llama2", input=["one", "two", "one"])
    assert embedded.embeddings[0] == embedded.embeddings[2] != embedded.embeddings[1]
    assert abs(sum(v * v for v in embedded.embeddings[1]) - 1) < 1e-4


def test_client_unknown_model_raises_response_error_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as chat:
        client.chat(model="ghost", messages=USER)
    assert chat.value.status_code == 404
    assert chat.value.error == 'model "ghost" not found, try pulling it first'  # v0.11.4
    with pytest.raises(ollama.ResponseError) as generate:
        client.generate(model="ghost", prompt="hi")
    assert generate.value.status_code == 404


# --- the wire ------------------------------------------------------------------------------


def test_streams_by_default_as_ndjson_lines_that_match_the_schemas(http: httpx.Client) -> None:
    lines = ndjson(http.post("/api/generate", json={"model": "llama2", "prompt": "Hi there"}))
    for line in lines:
        fixtures.validate("OllamaGenerateStreamLine", line)
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert lines[-1]["done_reason"] == "stop" and "context" in lines[-1]

    chat = ndjson(http.post("/api/chat", json={"model": "llama2", "messages": USER}))
    for line in chat:
        fixtures.validate("OllamaChatStreamLine", line)
    assert all(line["message"]["role"] == "assistant" for line in chat)


def test_single_objects_match_the_schemas(http: httpx.Client) -> None:
    generate = http.post("/api/generate", json={"model": "llama2", "prompt": "Hi",
                                                "stream": False})
    assert generate.headers["content-type"] == "application/json; charset=utf-8"
    fixtures.validate("OllamaGenerateResponse", generate.json())
    chat = http.post("/api/chat", json={"model": "llama2", "messages": USER, "stream": False})
    fixtures.validate("OllamaChatResponse", chat.json())
    loaded = http.post("/api/chat", json={"model": "llama2", "messages": []})
    fixtures.validate("OllamaChatResponse", loaded.json())
    assert loaded.json()["done_reason"] == "load"
    fixtures.validate("OllamaTags", http.get("/api/tags").json())
    fixtures.validate("OllamaShow", http.post("/api/show", json={"model": "llama2"}).json())
    fixtures.validate("OllamaPs", http.get("/api/ps").json())
    embed = http.post("/api/embed", json={"model": "llama2", "input": "x"})
    fixtures.validate("OllamaEmbedResponse", embed.json())
    fixtures.validate("OllamaVersion", http.get("/api/version").json())


@pytest.mark.parametrize(
    ("path", "content", "status", "message"),
    [
        ("/api/generate", b"", 400, "missing request body"),
        ("/api/chat", b"{not json", 400,
             "invalid character 'n' looking for beginning of object key string"),
        ("/api/chat", b'{"model": "llama2", "messages": "hi"}', 400,
         "json: cannot unmarshal string into Go struct field ChatRequest.messages of type "
         "[]api.Message"),
        ("/api/generate", b'{"model": "ghost", "prompt": "x"}', 404, "model 'ghost' not found"),
        ("/api/chat", b'{"messages": []}', 400, "model is required"),
    ],
)
def test_errors_are_flat_with_the_real_codes(http: httpx.Client, path: str, content: bytes,
                                             status: int, message: str) -> None:
    response = http.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json() == {"error": message}
    fixtures.validate("OllamaError", response.json())


def test_root_answers_get_and_head(http: httpx.Client) -> None:
    root = http.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"].startswith("text/plain")
    assert http.head("/").status_code == 200


def test_unknown_path_is_gins_plain_404(http: httpx.Client) -> None:
    response = http.get("/api/nothing-here")
    assert (response.status_code, response.text) == (404, "404 page not found")


def test_openai_compatible_routes_are_served(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["llama2:latest", "mistral:7b"]
    chat = http.post("/v1/chat/completions", json={"model": "llama2", "messages": USER})
    assert chat.json()["object"] == "chat.completion"


# --- through the control API ---------------------------------------------------------------


def test_scripted_reply_reaches_the_client(mock: Any, client: ollama.Client) -> None:
    mock.control.script(match={"path": "/api/generate"}, times=1, reply="Scripted words here.")
    assert client.generate(model="llama2", prompt="anything").response == "Scripted words here."
    parts = list(client.generate(model="llama2", prompt="anything", stream=True))
    assert "".join(p.response for p in parts) != "Scripted words here."  # used once only


def test_mid_stream_error_is_one_more_ndjson_line(mock: Any, client: ollama.Client,
                                                  http: httpx.Client) -> None:
    mock.control.fault("stream_error", match={"path": "/api/chat"}, times=1, after_frames=2,
                       message="model runner crashed")
    response = http.post("/api/chat", json={"model": "llama2", "messages": USER})
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 3 and lines[-1] == {"error": "model runner crashed"}
    assert all(line.get("done") is False for line in lines[:2])  # no done:true after the error

    mock.control.fault("stream_error", match={"path": "/api/chat"}, times=1, after_frames=1,
                       message="model runner crashed")
    with pytest.raises(ollama.ResponseError, match="model runner crashed"):
        list(client.chat(model="llama2", messages=USER, stream=True))
