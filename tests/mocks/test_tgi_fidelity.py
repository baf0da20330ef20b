"""The HuggingFace mock against TGI 3.3.6 itself: the version it names, axum's wrong-method and
malformed-body answers, TGI's ``/v1/completions`` stream (server.rs ``completions``), and every
body and stream event of every TGI/HF endpoint against the corrected ``fixtures/oas.yaml``
schemas (ERRATA, TGI section)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import InferenceClient

from proxyproof import fixtures
from proxyproof.mocks import generation

SERVED = "tgi-llama2"
HUB_ID = "meta-llama/Llama-2-7b-chat-hf"
MESSAGES = [{"role": "user", "content": "What is 1+1?"}]
PLAIN = "text/plain; charset=utf-8"
DESERIALIZE = "Failed to deserialize the JSON body into the target type: "


@pytest.fixture(scope="module")
def mock() -> Iterator[Any]:
    from proxyproof.mocks.app import run_mock

    with run_mock("huggingface", models=(SERVED,)) as server:
        yield server


@pytest.fixture(scope="module")
def http(mock: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as session:
        yield session


def events(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    payloads = [block.removeprefix("data: ") for block in blocks[:-1]]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


# --- the version it claims -----------------------------------------------------------------


def test_info_names_tgi_3_3_6_and_its_tag(http: httpx.Client) -> None:
    info = http.get("/info").json()
    fixtures.validate("TGIInfo", info)
    assert info["version"] == "3.3.6"
    assert info["sha"] == "db931fcf42da018a3657580c64bf2720f167f9ab"
    assert info["docker_label"] == "sha-db931fc"
    reply = http.post("/v1/chat/completions", json={"messages": MESSAGES}).json()
    assert reply["system_fingerprint"] == f"{info['version']}-{info['docker_label']}"


# --- TGI's /v1/completions stream ----------------------------------------------------------


def _completion_events(http: httpx.Client, **extra: Any) -> list[Any]:
    found = events(http.post("/v1/completions", json={"prompt": "Say something", "stream": True,
                                                      **extra}))
    assert found[-1] == "[DONE]"
    for event in found[:-1]:
        fixtures.validate("TGICompletionChunk", event)
    return found[:-1]


def test_completions_stream_is_tgis_chunks_then_a_final_event(http: httpx.Client) -> None:
    found = _completion_events(http)
    *chunks, final = found
    assert chunks and all(c["choices"][0]["finish_reason"] == "" for c in chunks)
    assert all("usage" not in c for c in chunks)
    assert all(c["object"] == "text_completion" and c["id"] == "" for c in found)
    assert final["choices"][0] == {"index": 0, "text": "</s>", "logprobs": None,
                                   "finish_reason": "eos_token"}
    whole = http.post("/v1/completions", json={"prompt": "Say something"}).json()
    fixtures.validate("TGICompletionResponse", whole)
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert whole["choices"][0]["finish_reason"] == "stop"  # format(true) outside the stream
    assert final["usage"] == whole["usage"]


def test_completions_stream_length_and_stop_sequence_finishes(http: httpx.Client) -> None:
    *chunks, final = _completion_events(http, max_tokens=3)
    assert final["choices"][0]["finish_reason"] == "length"
    assert len(chunks) == 2 and final["choices"][0]["text"] != "</s>"  # the third token ends it
    assert final["usage"]["completion_tokens"] == 3
    word = http.post("/v1/completions", json={"prompt": "Say something"}).json()
    stop = word["choices"][0]["text"].split()[2]
    *_, final = _completion_events(http, stop=[stop])
    assert final["choices"][0]["finish_reason"] == "stop_sequence"


def test_completions_stream_through_the_openai_client(mock: Any) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{mock.url}/v1", api_key="x", max_retries=0)
    chunks = list(client.completions.create(model="tgi", prompt="Say something", stream=True))
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [""] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "eos_token"
    assert chunks[-1].usage.total_tokens > 0


def test_model_list_is_tgis_one_model_list(http: httpx.Client) -> None:
    listed = http.get("/v1/models").json()
    fixtures.validate("TGIModelList", listed)
    assert listed["data"][0]["id"] == listed["data"][0]["owned_by"] == SERVED


def test_usage_counts_the_closing_eos_token_as_generate_does(http: httpx.Client) -> None:
    """TGI's usage.completion_tokens is details.generated_tokens: the </s> of a natural end
    counts, a length finish has none."""
    prompt = "Say something"
    details = http.post("/generate", json={"inputs": prompt, "parameters": {
        "details": True, "max_new_tokens": 100}}).json()["details"]
    assert details["finish_reason"] == "eos_token" and details["tokens"][-1]["special"] is True
    for request, path in (({"prompt": prompt}, "/v1/completions"),
                          ({"prompt": prompt, "stream": True}, "/v1/completions")):
        if request.get("stream"):
            usage = _completion_events(http)[-1]["usage"]
        else:
            usage = http.post(path, json=request).json()["usage"]
        assert usage["completion_tokens"] == details["generated_tokens"]
    chat = http.post("/v1/chat/completions", json={"messages": MESSAGES}).json()
    text = chat["choices"][0]["message"]["content"]
    assert chat["usage"]["completion_tokens"] == generation.count_tokens(text) + 1
    cut = http.post("/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": 2}).json()
    assert cut["usage"]["completion_tokens"] == 2


# --- the chat stream, as chat.rs sends it --------------------------------------------------


@pytest.mark.parametrize(
    "extra", [{}, {"max_tokens": 2}, {"stream_options": {"include_usage": True}}]
)
def test_chat_stream_and_body_validate(http: httpx.Client, extra: dict[str, Any]) -> None:
    request = {"model": "tgi", "messages": MESSAGES, **extra}
    whole = http.post("/v1/chat/completions", json=request).json()
    fixtures.validate("TGIChatResponse", whole)
    found = events(http.post("/v1/chat/completions", json={**request, "stream": True}))
    assert found[-1] == "[DONE]"
    for chunk in found[:-1]:
        fixtures.validate("TGIChatChunk", chunk)
        assert all(c["delta"]["role"] == "assistant" for c in chunk["choices"])
    finishes = [c["choices"][0]["finish_reason"] for c in found[:-1] if c["choices"]]
    assert finishes[-1] == ("length" if "max_tokens" in extra else "stop")
    assert set(finishes[:-1]) <= {None}
    if "stream_options" in extra:
        assert found[-2]["choices"] == [] and found[-2]["usage"] == whole["usage"]


# --- the native routes ---------------------------------------------------------------------


def test_native_bodies_and_events_validate(mock: Any, http: httpx.Client) -> None:
    for details in (False, True):
        parameters = {"max_new_tokens": 4, "details": details}
        body = {"inputs": "Hello", "parameters": parameters}
        fixtures.validate("TGIGenerateResponse", http.post("/generate", json=body).json())
        fixtures.validate("HFInferenceResponse", http.post("/", json=body).json())
        fixtures.validate("HFInferenceResponse", http.post(f"/models/{HUB_ID}", json=body).json())
        for path, streamed in (("/generate_stream", body), ("/", {**body, "stream": True}),
                               (f"/models/{HUB_ID}", {**body, "stream": True})):
            for event in events(http.post(path, json=streamed)):
                fixtures.validate("TGIStreamEvent", event)
    client = InferenceClient(model=mock.url)
    assert client.text_generation("Hi", max_new_tokens=3, return_full_text=False) == (
        generation.generate(SERVED, "Hi", prompt_tokens=0, max_tokens=3).text
    )
    grammar = {"type": "json_schema", "value": {"schema": {"type": "object"}}}
    accepted = http.post("/generate", json={"inputs": "Hi", "parameters": {"grammar": grammar}})
    assert accepted.status_code == 200


def test_error_bodies_validate(http: httpx.Client) -> None:
    invalid = http.post("/generate", json={"inputs": "Hi", "parameters": {"top_p": 1.0}})
    assert invalid.status_code == 422
    fixtures.validate("TGIError", invalid.json())
    (event,) = events(http.post("/generate_stream", json={"inputs": "Hi",
                                                          "parameters": {"top_p": 1.0}}))
    fixtures.validate("TGIError", event)


# --- axum's answers: wrong methods, malformed bodies ---------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/generate"), ("GET", "/generate_stream"), ("GET", "/v1/chat/completions"),
     ("GET", "/v1/completions"), ("POST", "/info"), ("POST", "/health"),
     ("DELETE", "/"), ("GET", f"/models/{HUB_ID}/v1/chat/completions")],
)
def test_a_wrong_method_gets_an_empty_405(http: httpx.Client, method: str, path: str) -> None:
    reply = http.request(method, path)
    assert reply.status_code == 405
    assert reply.content == b""


@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        ("/v1/chat/completions", b"{}", 422, "missing field `messages` at line 1 column 2"),
        ("/v1/chat/completions", b'{"model": "tgi"}', 422,
         "missing field `messages` at line 1 column 16"),
        ("/v1/chat/completions", b'{\n  "model": "t\xc3\xa9"\n}\n', 422,
         "missing field `messages` at line 3 column 1"),
        ("/v1/chat/completions", '{"model": "é"}'.encode(), 422,
         "missing field `messages` at line 1 column 15"),  # serde counts bytes
        ("/v1/completions", b'{"model": "tgi", "max_tokens": 3}', 422,
         "missing field `prompt` at line 1 column 33"),
        ("/generate", b'{"parameters": {}}  ', 422,
         "missing field `inputs` at line 1 column 18"),
        (f"/models/{HUB_ID}/v1/chat/completions", b'{"stream": true}', 422,
         "missing field `messages` at line 1 column 16"),
    ],
)
def test_a_missing_field_names_the_closing_braces_column(
    http: httpx.Client, path: str, body: bytes, status: int, text: str
) -> None:
    reply = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert (reply.status_code, reply.headers["content-type"]) == (status, PLAIN)
    assert reply.text == DESERIALIZE + text


def test_other_malformed_bodies_get_axums_plain_text(http: httpx.Client) -> None:
    json_type = {"Content-Type": "application/json"}
    syntax = http.post("/generate", content=b"{bad", headers=json_type)
    assert (syntax.status_code, syntax.headers["content-type"]) == (400, PLAIN)
    assert syntax.text.startswith("Failed to parse the request body as JSON: ")
    untyped = http.post("/generate", content=b'{"inputs": "x"}')
    assert (untyped.status_code, untyped.text) == (
        415, "Expected request with `Content-Type: application/json`")
    grammar = http.post("/generate", json={"inputs": "x", "parameters": {
        "grammar": {"type": "yaml", "value": ""}}})
    assert grammar.status_code == 422 and grammar.text == (
        DESERIALIZE + "parameters.grammar: unknown variant `yaml`, expected one of `json`, "
        "`regex`, `json_schema`")
