"""The OpenAI-style mock against the official OpenAI API description (openai/openai-openapi
f85dbe2, API 2.3.0): ``n`` from 1 to 128 through the official ``openai`` client, and every body
and stream chunk validated against the corrected ``fixtures/oas.yaml``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from proxyproof import fixtures

MESSAGES = [{"role": "user", "content": "What is 1+1?"}]


@pytest.fixture
def client(mock) -> openai.OpenAI:
    with openai.OpenAI(base_url=mock.url + "/v1", api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def _events(text: str) -> list[Any]:
    frames = [f.removeprefix("data: ") for f in text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    return [json.loads(f) for f in frames[:-1]]


@pytest.mark.parametrize("n", [1, 2, 128])
def test_n_from_1_to_128_gives_n_choices(client: openai.OpenAI, n: int) -> None:
    reply = client.chat.completions.create(model="llama2", messages=MESSAGES, n=n)
    assert [choice.index for choice in reply.choices] == list(range(n))
    fixtures.validate("OpenAIChatResponse", reply.model_dump(mode="json", exclude_unset=True))
    completion = client.completions.create(model="llama2", prompt="Say", n=n, max_tokens=4)
    assert [choice.index for choice in completion.choices] == list(range(n))


def test_choice_0_is_the_n_1_reply(client: openai.OpenAI) -> None:
    one = client.chat.completions.create(model="llama2", messages=MESSAGES)
    three = client.chat.completions.create(model="llama2", messages=MESSAGES, n=3)
    assert three.choices[0].message.content == one.choices[0].message.content
    assert three.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt counts once
    assert three.usage.completion_tokens > one.usage.completion_tokens  # every choice counts


@pytest.mark.parametrize(
    ("n", "message", "code"),
    [
        (129, "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 "
              "instead.", "integer_above_max_value"),
        (0, "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 "
            "instead.", "integer_below_min_value"),
    ],
)
def test_n_out_of_range_is_openais_400(client: openai.OpenAI, n: int, message: str,
                                       code: str) -> None:
    for call in (
        lambda: client.chat.completions.create(model="llama2", messages=MESSAGES, n=n),
        lambda: client.completions.create(model="llama2", prompt="Say", n=n),
    ):
        with pytest.raises(openai.BadRequestError) as raised:
            call()
        assert raised.value.status_code == 400
        assert raised.value.body["message"] == message
        assert raised.value.code == code and raised.value.param == "n"
        assert raised.value.type == "invalid_request_error"


def test_bodies_carry_what_openai_always_sends(mock) -> None:
    with httpx.Client(base_url=mock.url, timeout=10) as http:
        body = http.post("/v1/chat/completions",
                         json={"model": "llama2", "messages": MESSAGES, "n": 2}).json()
        fixtures.validate("OpenAIChatResponse", body)
        for choice in body["choices"]:
            assert choice["logprobs"] is None and choice["message"]["refusal"] is None
        text = http.post("/v1/completions", json={"model": "llama2", "prompt": "x", "n": 2}).json()
        fixtures.validate("OpenAICompletionResponse", text)
        assert [c["logprobs"] for c in text["choices"]] == [None, None]
        for path, request, name in (
            ("/v1/chat/completions", {"messages": MESSAGES}, "OpenAIChatChunk"),
            ("/v1/completions", {"prompt": "x"}, "OpenAICompletionChunk"),
        ):
            for extra in ({}, {"stream_options": {"include_usage": True}}, {"n": 3}):
                stream = http.post(path, json={"model": "llama2", "stream": True, **request,
                                               **extra})
                assert stream.headers["content-type"].startswith("text/event-stream")
                events = _events(stream.text)
                for event in events:
                    fixtures.validate(name, event)
                indexes = {c["index"] for e in events for c in e["choices"]}
                assert indexes == set(range(extra.get("n", 1)))


def test_a_null_prompt_is_valid_per_the_spec() -> None:
    fixtures.validate("OpenAICompletionRequest", {"model": "m", "prompt": None})
    assert not fixtures.validator("OpenAICompletionRequest").is_valid(
        {"model": "m", "prompt": "x", "n": 129}
    )
