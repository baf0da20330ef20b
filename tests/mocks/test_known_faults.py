"""Faults found in review, each proven mended over HTTP: the loading reply names the requested
model, Ollama's two embedding routes agree, TGI's ``/v1`` bodies have schemas of their own, and
``settings.latency`` holds back Ollama's structured-output replies too."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from proxyproof import fixtures
from proxyproof.mocks.app import RunningMock, run_mock

SERVED = "tgi-llama2"
Sse = Callable[[str], list[Any]]


@pytest.fixture(scope="module")
def hf() -> Iterator[RunningMock]:
    with run_mock("huggingface", models=(SERVED,)) as server:
        yield server


@pytest.fixture(scope="module")
def ollama() -> Iterator[RunningMock]:
    with run_mock("ollama") as server:
        yield server


# --- the Inference API's 503 names the model being loaded -----------------------------------


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/models/mistralai/Mistral-7B-Instruct-v0.2", "mistralai/Mistral-7B-Instruct-v0.2"),
        ("/models/gpt2", "gpt2"),
        ("/generate", SERVED),  # TGI's own routes: the model the server serves
    ],
)
def test_the_loading_reply_names_the_requested_model(
    hf: RunningMock, path: str, model: str
) -> None:
    hf.control.fault("loading", match={"path": path}, times=1, estimated_time=3.5)
    reply = httpx.post(hf.url + path, json={"inputs": "x"}, timeout=10)
    assert reply.status_code == 503
    assert reply.json() == {"error": f"Model {model} is currently loading", "estimated_time": 3.5}
    fixtures.validate("HFError", reply.json())


# --- Ollama's /v1/embeddings are /api/embed's vectors -----------------------------------------


def _native(ollama: RunningMock, **request: Any) -> list[list[float]]:
    reply = httpx.post(ollama.url + "/api/embed", json={"model": "llama2", **request}, timeout=10)
    assert reply.status_code == 200
    return reply.json()["embeddings"]


def _compatible(ollama: RunningMock, **request: Any) -> list[Any]:
    reply = httpx.post(ollama.url + "/v1/embeddings", json={"model": "llama2", **request},
                       timeout=10)
    assert reply.status_code == 200
    fixtures.validate("OpenAIEmbeddingsResponse", reply.json())
    return [item["embedding"] for item in reply.json()["data"]]


@pytest.mark.parametrize("dimensions", [None, 8, 0, 5000])
def test_ollama_embeds_alike_on_both_routes(ollama: RunningMock, dimensions: int | None) -> None:
    sized = {} if dimensions is None else {"dimensions": dimensions}
    native = _native(ollama, input=["hello", "world"], **sized)
    compatible = _compatible(ollama, input=["hello", "world"], **sized)
    assert compatible == native
    size = 8 if dimensions == 8 else 4096  # Llama 2 7B's own size unless asked for fewer
    assert [len(vector) for vector in native] == [size, size]


def test_ollama_base64_embeddings_carry_the_same_vector(ollama: RunningMock) -> None:
    (encoded,) = _compatible(ollama, input="hello", encoding_format="base64")
    (native,) = _native(ollama, input="hello")
    assert list(struct.unpack(f"<{len(native)}f", base64.b64decode(encoded))) == native


# --- TGI's /v1 bodies: a stop sequence ends them with finish_reason "stop_sequence" ----------


def _stop_word(hf: RunningMock, path: str, request: dict[str, Any]) -> str:
    """A word from the middle of the reply, which as a stop sequence cuts it short."""
    reply = httpx.post(hf.url + path, json=request, timeout=10).json()
    choice = reply["choices"][0]
    text = choice["message"]["content"] if "message" in choice else choice["text"]
    return text.split()[2]


@pytest.mark.parametrize(
    ("path", "request_body", "whole", "chunk"),
    [
        ("/v1/chat/completions",
         {"model": "tgi", "messages": [{"role": "user", "content": "What is 1+1?"}]},
         "TGIChatResponse", "TGIChatChunk"),
        ("/v1/completions", {"model": "tgi", "prompt": "Say something"},
         "TGICompletionResponse", "TGICompletionChunk"),
    ],
)
def test_tgi_v1_bodies_with_a_stop_sequence_validate(
    hf: RunningMock, sse: Sse, path: str, request_body: dict[str, Any], whole: str, chunk: str
) -> None:
    stopped = {**request_body, "stop": [_stop_word(hf, path, request_body)]}
    body = httpx.post(hf.url + path, json=stopped, timeout=10).json()
    assert body["choices"][0]["finish_reason"] == "stop_sequence"
    fixtures.validate(whole, body)
    assert not fixtures.validator(whole.replace("TGI", "OpenAI")).is_valid(body)
    events = sse(httpx.post(hf.url + path, json={**stopped, "stream": True}, timeout=10).text)
    assert events[-1] == "[DONE]"
    finishes = [event["choices"][0]["finish_reason"] for event in events[:-1]]
    before_the_end = None if "chat" in path else ""  # TGI's Chunk: finish_reason "" (server.rs)
    assert finishes[-1] == "stop_sequence" and set(finishes[:-1]) == {before_the_end}
    for event in events[:-1]:
        fixtures.validate(chunk, event)


# --- settings.latency applies to every generation, structured output included ----------------


@pytest.mark.parametrize("mock", [{"name": "ollama", "latency": 60}], indirect=True)
@pytest.mark.parametrize("route", ["/api/generate", "/api/chat"])
def test_latency_holds_back_a_formatted_reply(mock: RunningMock, route: str) -> None:
    request = {"model": "llama2", "format": "json", "stream": False, "prompt": "Give JSON",
               "messages": [{"role": "user", "content": "Give JSON"}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(mock.url + route, json=request, timeout=0.3)
    entry = mock.control.wait(mock.control.journal()[-1]["id"], timeout=10)
    assert entry["outcome"] == "client_disconnected"
