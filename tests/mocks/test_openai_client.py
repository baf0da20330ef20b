"""The official ``openai`` client, unmodified, against the OpenAI-style mock."""

from __future__ import annotations

import math
from collections.abc import Iterator

import openai
import pytest

from proxyproof.mocks import generation
from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.mocks.generation import embedding_vector
from proxyproof.mocks.openai_compat_dialect import EMBEDDING_DIMENSIONS

KEY = "sk-test-0123456789abcdef"
MESSAGES = [
    {"role": "system", "content": "You are a mathematician"},
    {"role": "user", "content": "What is 1+1?"},
]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMock]:
    with run_mock("openai", api_key=KEY, models=("llama2", "mistral")) as mock:
        yield mock


@pytest.fixture
def client(server: RunningMock) -> Iterator[openai.OpenAI]:
    server.control.reset()
    with openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def expected(model: str = "llama2", **kwargs: object) -> generation.Generation:
    return generation.generate(
        model,
        generation.chat_key(MESSAGES),
        prompt_tokens=generation.chat_prompt_tokens(MESSAGES),
        **kwargs,  # type: ignore[arg-type]
    )


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="llama2", messages=MESSAGES)
    gen = expected()
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "llama2"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == gen.text
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        gen.prompt_tokens,
        gen.completion_tokens,
    )
    assert reply.usage.total_tokens == gen.prompt_tokens + gen.completion_tokens


def test_chat_stream_matches_the_non_streamed_reply(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="llama2", messages=MESSAGES)
    chunks = list(
        client.chat.completions.create(
            model="llama2", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert len({c.id for c in chunks}) == 1


def test_max_tokens_cuts_the_reply_and_says_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="llama2", messages=MESSAGES, max_tokens=3)
    assert reply.choices[0].message.content == expected(max_tokens=3).text
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    stream = client.chat.completions.create(
        model="llama2", messages=MESSAGES, max_completion_tokens=3, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected(max_tokens=3).text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_seed_and_stop_shape_the_reply(client: openai.OpenAI) -> None:
    seeded = client.chat.completions.create(model="llama2", messages=MESSAGES, seed=7)
    assert seeded.choices[0].message.content == expected(seed=7).text
    full = expected().text
    stop = full.split()[2]
    stopped = client.chat.completions.create(model="llama2", messages=MESSAGES, stop=[stop])
    assert stopped.choices[0].message.content == full[: full.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"


def test_legacy_completions_default_to_16_tokens(client: openai.OpenAI) -> None:
    prompt = "Once upon a time"
    gen = generation.generate(
        "llama2", prompt, prompt_tokens=generation.count_tokens(prompt), max_tokens=16
    )
    reply = client.completions.create(model="llama2", prompt=prompt)
    assert reply.object == "text_completion"
    assert reply.choices[0].text == gen.text
    assert reply.choices[0].finish_reason == gen.finish_reason
    assert reply.usage is not None and reply.usage.completion_tokens == gen.completion_tokens
    chunks = list(client.completions.create(model="llama2", prompt=prompt, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == gen.text
    assert chunks[-1].choices[0].finish_reason == gen.finish_reason


def test_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["llama2", "mistral"]
    model = client.models.retrieve("mistral")
    assert (model.id, model.object) == ("mistral", "model")
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-9")
    assert raised.value.code == "model_not_found"


def test_embeddings_are_deterministic_unit_vectors(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    assert [d.index for d in result.data] == [0, 1]
    first = result.data[0].embedding
    assert first == pytest.approx(embedding_vector("a cat", EMBEDDING_DIMENSIONS))
    assert math.isclose(math.fsum(v * v for v in first), 1.0, rel_tol=1e-5)
    again = client.embeddings.create(model="x", input="a cat", encoding_format="float")
    assert again.data[0].embedding == pytest.approx(first)
    short = client.embeddings.create(model="x", input="a cat", dimensions=8).data[0].embedding
    assert len(short) == 8
    assert math.isclose(math.fsum(v * v for v in short), 1.0, rel_tol=1e-5)


def test_a_wrong_key_raises_authentication_error_with_the_key_masked(
    server: RunningMock,
) -> None:
    wrong = "sk-wrong-key-abcdefghijkl"
    with (
        openai.OpenAI(base_url=server.url + "/v1", api_key=wrong, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        sdk.chat.completions.create(model="llama2", messages=MESSAGES)
    assert raised.value.code == "invalid_api_key"
    assert wrong not in str(raised.value)
    assert "sk-" in raised.value.message and "kl." in raised.value.message


def test_request_errors_raise_the_right_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert raised.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="llama2", messages=[])
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="llama2", messages=MESSAGES, n=129)
    assert raised.value.param == "n"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="llama2", messages=MESSAGES, max_tokens=0)
    assert raised.value.code == "integer_below_min_value"


def test_faults_raise_the_right_exceptions(server: RunningMock, client: openai.OpenAI) -> None:
    control = server.control
    control.fault("rate_limit", retry_after=3, times=1)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="llama2", messages=MESSAGES)
    assert limited.value.response.headers["retry-after"] == "3"
    control.fault("loading", times=1)
    with pytest.raises(openai.InternalServerError) as loading:
        client.chat.completions.create(model="llama2", messages=MESSAGES)
    assert loading.value.status_code == 503
    control.fault("status", status=500, json={"error": {"message": "boom"}}, times=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="llama2", messages=MESSAGES)
    control.fault("reset_before_headers", times=1)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="llama2", messages=MESSAGES)
    control.fault("empty_response", times=1)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="llama2", messages=MESSAGES)
    control.fault("stream_error", after_frames=2, message="the GPU caught fire", times=1)
    with pytest.raises(openai.APIError, match="the GPU caught fire"):
        list(client.chat.completions.create(model="llama2", messages=MESSAGES, stream=True))
    assert client.chat.completions.create(model="llama2", messages=MESSAGES).choices


def test_a_scripted_reply_keeps_the_protocol(server: RunningMock, client: openai.OpenAI) -> None:
    server.control.script(reply="Because I said so.", match={"body_contains": "1+1"})
    reply = client.chat.completions.create(model="llama2", messages=MESSAGES)
    assert reply.choices[0].message.content == "Because I said so."
    assert reply.usage is not None and reply.usage.completion_tokens == 4
    chunks = list(client.chat.completions.create(model="llama2", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Because I said so."
