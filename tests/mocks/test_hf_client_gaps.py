"""The HF Inference API's per-model Messages API, with the official ``huggingface_hub`` client:
``InferenceClient(model="<url>/models/<id>").chat_completion(...)`` posts to
``/models/<id>/v1/chat/completions`` (hf_openai.md §3.5), which the mock once read as a model id
(a 422). TGI's ``/v1/completions`` stream shape is checked in ``test_tgi_fidelity``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from huggingface_hub import InferenceClient

from proxyproof import fixtures
from proxyproof.mocks import generation
from proxyproof.mocks.app import run_mock

SERVED = "tgi-llama2"
HUB_ID = "meta-llama/Llama-2-7b-chat-hf"
MESSAGES = [{"role": "user", "content": "What is 1+1?"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[Any]:
    with run_mock("huggingface", models=(SERVED,)) as server:
        yield server


def _expected(max_tokens: int | None = None) -> str:
    key = generation.chat_key(MESSAGES)
    prompt = generation.chat_prompt_tokens(MESSAGES)
    return generation.generate(HUB_ID, key, prompt_tokens=prompt, max_tokens=max_tokens).text


def test_chat_completion_through_the_models_url(mock: Any) -> None:
    client = InferenceClient(model=f"{mock.url}/models/{HUB_ID}")
    reply = client.chat_completion(messages=MESSAGES, max_tokens=5)
    assert reply.model == HUB_ID  # the model the path names, not the server's own
    assert reply.choices[0].message.content == _expected(5)
    assert reply.choices[0].finish_reason == "length"
    assert reply.system_fingerprint == "3.3.6-sha-db931fc"
    assert reply.usage.prompt_tokens == generation.chat_prompt_tokens(MESSAGES)
    (entry,) = [e for e in mock.control.journal() if e["path"].endswith("/v1/chat/completions")]
    assert entry["path"] == f"/models/{HUB_ID}/v1/chat/completions"


def test_chat_completion_streams_through_the_models_url(mock: Any) -> None:
    client = InferenceClient(model=f"{mock.url}/models/{HUB_ID}")
    chunks = list(client.chat_completion(messages=MESSAGES, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == _expected()
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {chunk.model for chunk in chunks} == {HUB_ID}

    with_usage = list(client.chat_completion(messages=MESSAGES, stream=True, max_tokens=3,
                                             stream_options={"include_usage": True}))
    assert with_usage[-1].choices == [] and with_usage[-1].usage.completion_tokens == 3


def test_models_url_bodies_validate(mock: Any) -> None:
    url = f"{mock.url}/models/{HUB_ID}/v1/chat/completions"
    whole = httpx.post(url, json={"model": "dummy", "messages": MESSAGES}, timeout=10)
    assert whole.status_code == 200
    fixtures.validate("TGIChatResponse", whole.json())
    stream = httpx.post(url, json={"messages": MESSAGES, "stream": True,
                                   "stream_options": {"include_usage": True}}, timeout=10)
    payloads = [block[len("data: "):] for block in stream.text.split("\n\n") if block]
    assert payloads[-1] == "[DONE]"
    for payload in payloads[:-1]:
        fixtures.validate("TGIChatChunk", httpx.Response(200, content=payload).json())


def test_the_native_model_route_still_generates(mock: Any) -> None:
    reply = httpx.post(f"{mock.url}/models/{HUB_ID}", json={"inputs": "Hi"}, timeout=10)
    assert reply.status_code == 200
    fixtures.validate("HFInferenceResponse", reply.json())
