"""The strategies derived from fixtures/oas.yaml: what they draw validates against the document,
they reach the inputs that matter (control tokens, every role, options out of range), and they
are quick to draw from."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyproof import fixtures
from proxyproof.harness import strategies as pps
from proxyproof.harness.decoding import (
    decode_llama2_chat,
    decode_llama2_completion,
    expected_loss,
)
from proxyproof.harness.oracle import llama2_chat_prompt, llama2_completion_prompt

QUICK = settings(max_examples=25, deadline=None, database=None,
                 suppress_health_check=list(HealthCheck))


def _drawn(strategy: st.SearchStrategy[Any], count: int = 60) -> list[Any]:
    """``count`` values of ``strategy``, the same ones on every run: what the tests below say of
    a sample (it holds an out-of-range temperature, ...) must not depend on the draw."""
    found: list[Any] = []

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


@QUICK
@given(pps.chat_requests())
def test_chat_requests_are_chat_requests(request: dict[str, Any]) -> None:
    fixtures.validate("ChatRequest", request)
    assert all(isinstance(m["content"], str) for m in request["messages"])
    assert "stream" not in request


@QUICK
@given(pps.completions_requests())
def test_completions_requests_are_completions_requests(request: dict[str, Any]) -> None:
    fixtures.validate("CompletionsRequest", request)


@pytest.mark.parametrize("pair", sorted(pps.UPSTREAM_REPLY_SCHEMAS), ids="/".join)
def test_upstream_replies_validate(pair: tuple[str, str]) -> None:
    names = pps.UPSTREAM_REPLY_SCHEMAS[pair]
    for body in _drawn(pps.upstream_replies(*pair), 15):
        assert any(fixtures.validator(name).is_valid(body) for name in names), body


def test_the_requests_reach_what_matters() -> None:
    requests = _drawn(pps.chat_requests(), 120)
    roles = {m["role"] for r in requests for m in r["messages"]}
    assert roles == set(pps.ROLES)
    texts = [m["content"] for r in requests for m in r["messages"]]
    assert any(fragment in text for text in texts for fragment in ("[INST]", "<<SYS>>", "</s>"))
    assert "" in texts and any(not t.isascii() for t in texts)
    assert any(len(r["messages"]) >= 3 for r in requests)
    temperatures = [r["temperature"] for r in requests if r.get("temperature") is not None]
    assert any(not 0.05 <= t <= 2 for t in temperatures)  # out of range too
    assert any(0.05 <= t <= 2 for t in temperatures)


def test_generation_is_quick() -> None:
    pps.chat_requests()  # compiled once, cached
    started = time.monotonic()
    _drawn(pps.chat_requests(), 50)
    assert time.monotonic() - started < 20  # about 1 s on an idle 2-core machine


def test_refs_are_inlined() -> None:
    schema = pps.resolved_schema("OpenAIChatResponse")
    assert "$ref" not in repr(schema)
    assert schema["properties"]["choices"]["items"]["properties"]["finish_reason"]["enum"]


# ---------------------------------------------------------------- the decoders read back


@QUICK
@given(pps.chat_requests())
def test_the_llama2_chat_prompt_decodes_to_the_expected_loss(request: dict[str, Any]) -> None:
    prompt = llama2_chat_prompt(request["messages"], kong_compat=False)
    expected, _ = expected_loss("raw", "llm/v1/chat", request, False)
    assert tuple(decode_llama2_chat(prompt)) == expected.turns


@QUICK
@given(pps.llama_text())
def test_the_completion_prompt_decodes(prompt: str) -> None:
    expected, _ = expected_loss("raw", "llm/v1/completions", {"prompt": prompt}, False)
    decoded = decode_llama2_completion(llama2_completion_prompt(prompt, kong_compat=False))
    assert tuple(decoded) == expected.turns
