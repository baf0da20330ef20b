"""The oracle and the reference proxy are written independently; here they must agree.

A disagreement means one of them misreads the specification: find out which before changing
either. Only a test may import both: harness/ and mocks/ never import proxy_impl
(tests/test_boundaries.py holds that rule)."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxyproof.harness import oracle
from proxyproof.proxy_impl.behaviour import FIXED, KONG
from proxyproof.proxy_impl.codecs import llama2_tokens, raw

ROLES = st.sampled_from(["system", "user", "assistant", "tool"])
PLAIN = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
# Control sequences, their variants and near misses, and the pieces they are made of, so that
# generated text holds whole tags, broken ones and tags that only form across pieces.
PIECES = st.sampled_from([
    "<s>", "</s>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "[ /inst ]", "< S >", "<</ Sys>>",
    "<", "<<", "[", "/", " ", "\t", "\n", "s", "S", "sys", "SYS", "INST", "inst", "ı", "ſ", ">",
    ">>", "]", "\u200b", "\u00a0",
])
TEXT = st.lists(st.one_of(PLAIN, PIECES), max_size=8).map("".join)
MESSAGES = st.lists(st.fixed_dictionaries({"role": ROLES, "content": TEXT}), min_size=1, max_size=8)
REJECT = replace(FIXED, control_tokens="reject")


@given(MESSAGES)
def test_fixed_chat_prompts_agree(messages):
    assert raw.chat_prompt(messages, FIXED) == oracle.llama2_chat_prompt(messages, False)


@given(MESSAGES)
def test_kong_chat_prompts_agree(messages):
    assert raw.chat_prompt(messages, KONG) == oracle.llama2_chat_prompt(messages, True)


@given(TEXT)
def test_completion_prompts_agree(prompt):
    for behaviour, compat in ((FIXED, False), (KONG, True)):
        assert raw.completion_prompt(prompt, behaviour) == oracle.llama2_completion_prompt(
            prompt, compat)


@given(TEXT)
def test_control_tokens_are_found_and_neutralised_alike(text):
    assert bool(llama2_tokens.control_sequences(text)) == oracle.has_control_tokens(text)
    assert llama2_tokens.neutralise(text) == oracle.neutralise_control_tokens(text)


@given(MESSAGES)
def test_reject_mode_refuses_exactly_what_the_oracle_would_neutralise(messages):
    unsafe = any(oracle.has_control_tokens(m["content"]) for m in messages)
    if unsafe:
        with pytest.raises(llama2_tokens.UnsafePrompt):
            raw.chat_prompt(messages, REJECT)
    else:
        assert raw.chat_prompt(messages, REJECT) == oracle.llama2_chat_prompt(messages, False)
