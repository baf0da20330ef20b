"""The HuggingFace mock over HTTP: ``huggingface_hub.InferenceClient`` unmodified, raw SSE
framing, schemas, and the Inference API's own errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import GenerationError, ValidationError

from proxyproof import fixtures
from proxyproof.mocks import generation, huggingface
from proxyproof.mocks.app import run_mock
from proxyproof.mocks.base import Call, MockSettings

SERVED = "tgi-llama2"
HUB_ID = "meta-llama/Llama-2-7b-chat-hf"


@pytest.fixture(scope="module")
def mock() -> Iterator[Any]:
    with run_mock("huggingface", models=(SERVED,)) as server:
        yield server


@pytest.fixture(scope="module")
def http(mock: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as session:
        yield session


def sse(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""  # every event ends with a blank line
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks[:-1])
    assert "[DONE]" not in response.text
    return [json.loads(block[len("data: "):]) for block in blocks[:-1]]


def reply_to(prompt: str, model: str = SERVED, **kwargs: Any) -> str:
    return generation.generate(model, prompt, prompt_tokens=0, **kwargs).text


# --- the official client -------------------------------------------------------------------


def test_text_generation_against_tgi_root(mock: Any) -> None:
    client = InferenceClient(model=mock.url)  # posts to "/", TGI's compat route
    answer = reply_to("Hello", max_tokens=5)
    assert client.text_generation("Hello", max_new_tokens=5) == "Hello" + answer
    assert client.text_generation("Hello", max_new_tokens=5, return_full_text=False) == answer

    detailed = client.text_generation("Hello", max_new_tokens=5, details=True)
    assert detailed.generated_text == "Hello" + answer
    assert detailed.details.finish_reason == "length"
    assert detailed.details.generated_tokens == 5


def test_text_generation_streams_tokens(mock: Any) -> None:
    client = InferenceClient(model=mock.url)
    tokens = list(client.text_generation("Hello", stream=True))
    assert tokens[-1] == "</s>"  # TGI ends a natural stop with the EOS token, special or not
    assert "".join(tokens[:-1]) == reply_to("Hello")

    events = list(client.text_generation("Hello", stream=True, details=True, max_new_tokens=3))
    assert [e.token.text for e in events] == generation.tokenize(reply_to("Hello",
                                                                          max_tokens=3))
    assert events[-1].details.finish_reason == "length"
    assert events[-1].generated_text == "Hello" + reply_to("Hello", max_tokens=3)


def test_text_generation_against_generate_urls(mock: Any) -> None:
    plain = InferenceClient(model=f"{mock.url}/generate")
    assert plain.text_generation("Hi", max_new_tokens=4) == reply_to("Hi", max_tokens=4)
    streaming = InferenceClient(model=f"{mock.url}/generate_stream")
    tokens = list(streaming.text_generation("Hi", stream=True, max_new_tokens=4))
    assert "".join(tokens) == reply_to("Hi", max_tokens=4)


def test_text_generation_against_the_inference_api(mock: Any) -> None:
    client = InferenceClient(model=f"{mock.url}/models/{HUB_ID}")
    answer = reply_to("Hello", model=HUB_ID, max_tokens=6)
    assert client.text_generation("Hello", max_new_tokens=6) == "Hello" + answer


def test_validation_error_raises_the_typed_error(mock: Any) -> None:
    client = InferenceClient(model=mock.url)
    with pytest.raises(ValidationError, match="`top_p` must be > 0.0 and < 1.0"):
        client.text_generation("Hello", top_p=1.0)
    with pytest.raises(ValidationError, match="`temperature` must be strictly positive"):
        list(client.text_generation("Hello", temperature=0.0, stream=True))


def test_chat_completion_against_the_messages_api(mock: Any) -> None:
    client = InferenceClient(base_url=mock.url)
    out = client.chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content
    chunks = list(client.chat_completion(messages=[{"role": "user", "content": "Hi"}],
                                         max_tokens=5, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == out.choices[0].message.content


# --- the wire ------------------------------------------------------------------------------


def test_bodies_match_the_schemas(http: httpx.Client) -> None:
    request = {"inputs": "Hello", "parameters": {"details": True, "max_new_tokens": 4}}
    api = http.post(f"/models/{HUB_ID}", json=request)
    fixtures.validate("HFInferenceResponse", api.json())
    compat = http.post("/", json=request)
    fixtures.validate("HFInferenceResponse", compat.json())
    generate = http.post("/generate", json=request)
    fixtures.validate("TGIGenerateResponse", generate.json())
    assert generate.headers["x-generated-tokens"] == "4"
    for event in sse(http.post("/generate_stream", json=request)):
        fixtures.validate("TGIStreamEvent", event)
    for event in sse(http.post("/", json={**request, "stream": True})):
        fixtures.validate("TGIStreamEvent", event)
    fixtures.validate("TGIInfo", http.get("/info").json())
    assert http.get("/info").json()["model_id"] == SERVED


def test_validation_errors_on_the_wire(http: httpx.Client) -> None:
    bad = {"inputs": "x", "parameters": {"max_new_tokens": 0}}
    rejected = http.post("/generate", json=bad)
    assert rejected.status_code == 422
    fixtures.validate("TGIError", rejected.json())
    [event] = sse(http.post("/generate_stream", json=bad))  # an event on a 200
    assert event == {"error": "Input validation error: `max_new_tokens` must be strictly "
                              "positive", "error_type": "validation"}
    malformed = http.post("/generate", json={"parameters": {}})
    assert malformed.status_code == 422 and malformed.headers["content-type"].startswith(
        "text/plain")
    assert malformed.text.startswith("Failed to deserialize the JSON body into the target type")


def test_health_and_unknown_paths(http: httpx.Client) -> None:
    health = http.get("/health")
    assert (health.status_code, health.content) == (200, b"")
    missing = http.get("/nothing")
    assert (missing.status_code, missing.content) == (404, b"")


def test_auth_failures_differ_between_the_two_families() -> None:
    with run_mock("huggingface", api_key="hf_secret") as server, httpx.Client(
        base_url=server.url, timeout=10
    ) as session:
        api = session.post(f"/models/{HUB_ID}", json={"inputs": "x"},
                           headers={"Authorization": "Bearer wrong"})
        assert api.status_code == 401
        assert api.json() == {"error": "Authorization header is correct, but the token seems "
                                       "invalid"}
        fixtures.validate("HFError", api.json())
        tgi = session.post("/generate", json={"inputs": "x"})
        assert (tgi.status_code, tgi.content) == (401, b"")
        allowed = session.post("/generate", json={"inputs": "x"},
                               headers={"Authorization": "Bearer hf_secret"})
        assert allowed.status_code == 200
        assert session.get("/info").status_code == 200  # info and health stay public
        assert "hf_secret" not in api.text + tgi.text


def test_loading_body_matches_the_schema() -> None:
    call = Call("POST", f"/models/{HUB_ID}", {"model_id": HUB_ID}, {}, {}, b"", MockSettings())
    loading = huggingface.loading(call, 12.5)
    assert loading.status == 503
    fixtures.validate("HFError", loading.body)


# --- through the control API ---------------------------------------------------------------


def test_loading_fault_answers_503_with_estimated_time(mock: Any, http: httpx.Client) -> None:
    mock.control.fault("loading", match={"path": f"/models/{HUB_ID}"}, times=1,
                       estimated_time=12.5)
    response = http.post(f"/models/{HUB_ID}", json={"inputs": "x"},
                         headers={"x-wait-for-model": "false"})
    assert response.status_code == 503
    assert response.json()["estimated_time"] == 12.5
    assert response.json()["error"].endswith("is currently loading")
    fixtures.validate("HFError", response.json())


def test_mid_stream_error_raises_the_typed_generation_error(mock: Any) -> None:
    mock.control.fault("stream_error", match={"path": "/generate_stream"}, times=1,
                       after_frames=2, message="CUDA out of memory")
    client = InferenceClient(model=f"{mock.url}/generate_stream")
    received = []
    with pytest.raises(GenerationError, match="CUDA out of memory"):
        for token in client.text_generation("Hello", stream=True):
            received.append(token)
    assert len(received) == 2
