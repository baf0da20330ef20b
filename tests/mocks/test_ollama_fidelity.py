"""The Ollama mock against v0.11.4: exact status, content type and text for malformed bodies,
wrong types and wrong methods; every body and NDJSON line of every endpoint valid against the
corrected Ollama schemas of ``fixtures/oas.yaml``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from proxyproof.fixtures import validate
from proxyproof.mocks.app import run_mock

GIN_JSON = "application/json; charset=utf-8"
USER = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with run_mock("ollama") as mock, httpx.Client(base_url=mock.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "content_type", "text"),
    [
        ("POST", "/api/chat", b"{bad", 400, GIN_JSON,
         "invalid character 'b' looking for beginning of object key string"),
        ("POST", "/api/generate", b'{"model": "llama2"', 400, GIN_JSON, "unexpected EOF"),
        ("POST", "/api/generate", b'{"model" "llama2"}', 400, GIN_JSON,
         "invalid character '\"' after object key"),
        ("POST", "/api/generate", b'{"model": "llama2" "prompt": "x"}', 400, GIN_JSON,
         "invalid character '\"' after object key:value pair"),
        ("POST", "/api/chat", b'{"model": "llama2", "stream": tru}', 400, GIN_JSON,
         "invalid character '}' in literal true (expecting 'e')"),
        ("POST", "/api/chat", b'{"messages": [1 2]}', 400, GIN_JSON,
         "invalid character '2' after array element"),
        ("POST", "/api/generate", b"", 400, GIN_JSON, "missing request body"),
        ("POST", "/api/generate", b'{"model": "llama2", "prompt": 7}', 400, GIN_JSON,
         "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type "
         "string"),
        ("POST", "/api/chat", b'{"model": "llama2", "messages": [{"role": "user", "content": '
         b'["x"]}]}', 400, GIN_JSON,
         "json: cannot unmarshal array into Go struct field Message.messages.content of type "
         "string"),
        ("POST", "/api/chat", b'{"model": "llama2", "messages": [], "think": "max"}', 400,
         GIN_JSON, 'invalid think value: "max" (must be "high", "medium", "low", true, or false)'),
        ("POST", "/api/chat", b'{"model": "ghost", "messages": [{"role": "user", "content": '
         b'"x"}]}', 404, GIN_JSON, 'model "ghost" not found, try pulling it first'),
        ("POST", "/api/generate", b'{"model": "ghost", "prompt": "x"}', 404, GIN_JSON,
         "model 'ghost' not found"),
        ("POST", "/api/embed", b'{"model": "ghost", "input": "x"}', 404, GIN_JSON,
         'model "ghost" not found, try pulling it first'),
        ("GET", "/api/chat", b"", 405, "text/plain", "405 method not allowed"),
        ("GET", "/api/pull", b"", 405, "text/plain", "405 method not allowed"),
        ("POST", "/api/delete", b"{}", 405, "text/plain", "405 method not allowed"),
        ("POST", "/api/tags", b"", 405, "text/plain", "405 method not allowed"),
        ("GET", "/api/nowhere", b"", 404, "text/plain", "404 page not found"),
    ],
)
def test_refusals_word_for_word(http: httpx.Client, method: str, path: str, body: bytes,
                                status: int, content_type: str, text: str) -> None:
    response = http.request(method, path, content=body)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    if content_type == "text/plain":
        assert response.text == text
    else:
        assert response.json() == {"error": text}


def test_bytes_after_the_first_value_are_ignored(http: httpx.Client) -> None:
    body = b'{"model": "llama2", "prompt": "x", "stream": false} trailing'
    assert http.post("/api/generate", content=body).status_code == 200


def test_v1_handler_errors_are_api_errors(http: httpx.Client) -> None:
    missing = http.post("/v1/chat/completions", json={"model": "ghost", "messages": USER})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json() == {"error": {
        "message": 'model "ghost" not found, try pulling it first', "type": "api_error",
        "param": None, "code": None}}
    # GenerateHandler and ShowHandler look the model up: their own words, not the scheduler's
    completion = http.post("/v1/completions", json={"model": "ghost", "prompt": "x"})
    retrieved = http.get("/v1/models/ghost")
    for answer in (completion, retrieved):
        assert answer.status_code == 404
        assert answer.json()["error"]["message"] == "model 'ghost' not found"
    embedded = http.post("/v1/embeddings", json={"model": "ghost", "input": "x"})
    assert embedded.json()["error"]["message"] == (
        'model "ghost" not found, try pulling it first')
    unreadable = http.post("/v1/chat/completions", content=b"{bad")
    assert unreadable.status_code == 400
    assert unreadable.json()["error"]["type"] == "invalid_request_error"
    assert unreadable.json()["error"]["message"] == (
        "invalid character 'b' looking for beginning of object key string")


def _lines(response: httpx.Response) -> list:
    assert response.headers["content-type"] == "application/x-ndjson"
    text = response.text
    assert text.endswith("\n") and "\n\n" not in text
    return [json.loads(line) for line in text.splitlines()]


def test_every_endpoint_validates_against_the_v0_11_4_schemas(http: httpx.Client) -> None:
    checks: list[tuple[str, object]] = []
    checks.append(("OllamaVersion", http.get("/api/version").json()))
    checks.append(("OllamaTags", http.get("/api/tags").json()))
    checks.append(("OllamaPs", http.get("/api/ps").json()))
    checks.append(("OllamaShow", http.post("/api/show", json={"model": "llama2"}).json()))
    for stream in (True, False):
        chat = http.post("/api/chat", json={"model": "llama2", "messages": USER,
                                            "stream": stream})
        generate = http.post("/api/generate", json={"model": "llama2", "prompt": "hi",
                                                    "stream": stream})
        if stream:
            checks += [("OllamaChatStreamLine", line) for line in _lines(chat)]
            checks += [("OllamaGenerateStreamLine", line) for line in _lines(generate)]
        else:
            checks += [("OllamaChatResponse", chat.json()),
                       ("OllamaGenerateResponse", generate.json())]
    for load in ({"model": "llama2", "messages": []}, {"model": "llama2", "messages": [],
                                                       "keep_alive": 0}):
        checks.append(("OllamaChatResponse", http.post("/api/chat", json=load).json()))
    checks.append(("OllamaGenerateResponse",
                   http.post("/api/generate", json={"model": "llama2"}).json()))
    checks.append(("OllamaEmbedResponse",
                   http.post("/api/embed", json={"model": "llama2", "input": ["a", "b"]}).json()))
    pull = http.post("/api/pull", json={"model": "mistral"})
    checks += [("OllamaProgress", line) for line in _lines(pull)]
    checks.append(("OllamaProgress",
                   http.post("/api/pull", json={"model": "mistral", "stream": False}).json()))
    failed = http.post("/api/pull", json={"model": "no-such-model-xyz"})
    failed_lines = _lines(failed)
    checks += [("OllamaProgress", failed_lines[0]), ("OllamaError", failed_lines[1])]
    for response in (http.post("/api/chat", content=b"{bad"),
                     http.post("/api/show", json={"model": "ghost"}),
                     http.request("DELETE", "/api/delete", json={"model": "ghost"}),
                     http.post("/api/copy", json={"source": "ghost", "destination": "x"})):
        checks.append(("OllamaError", response.json()))
    requests = [
        ("OllamaChatRequest", {"model": "llama2", "messages": USER, "think": "low"}),
        ("OllamaPullRequest", {"model": "mistral", "stream": False}),
        ("OllamaDeleteRequest", {"model": "mistral"}),
        ("OllamaCopyRequest", {"source": "llama2", "destination": "copy"}),
    ]
    for name, instance in checks + requests:
        validate(name, instance)
    assert len(checks) > 20


def test_show_lists_the_gguf_tensors_verbose_or_not(http: httpx.Client) -> None:
    for verbose in (False, True):
        shown = http.post("/api/show", json={"model": "llama2", "verbose": verbose}).json()
        validate("OllamaShow", shown)
        tensors = shown["tensors"]
        assert len(tensors) == 2 + 32 * 9 + 1  # embeddings, 32 blocks of nine, norm and head
        assert tensors[0] == {"name": "token_embd.weight", "type": "Q4_0", "shape": [4096, 32000]}
        assert {t["name"] for t in tensors} >= {"blk.31.ffn_up.weight", "output.weight"}
        info = shown["model_info"]
        assert "general.name" not in info and info["tokenizer.ggml.tokens"] == []


def test_show_without_model_info_is_valid_and_details_are_required() -> None:
    from jsonschema import ValidationError

    shown = {"details": {"parent_model": "", "format": "gguf", "family": "llama",
                         "families": None, "parameter_size": "7B",
                         "quantization_level": "Q4_0"},
             "modified_at": "2025-08-01T00:00:00Z"}
    validate("OllamaShow", shown)
    with pytest.raises(ValidationError):
        validate("OllamaShow", {"modified_at": "2025-08-01T00:00:00Z"})
    with pytest.raises(ValidationError):
        validate("OllamaModelDetails", {"format": "gguf"})
    with pytest.raises(ValidationError):
        validate("OllamaChatRequest", {"model": "m", "think": "max"})


def test_each_ollama_schema_names_its_source() -> None:
    from proxyproof.fixtures import load_oas

    schemas = load_oas()["components"]["schemas"]
    ollama = {name: s for name, s in schemas.items() if name.startswith("Ollama")}
    assert ollama and all("v0.11.4" in s.get("x-source", "") for s in ollama.values())

