"""The oracle and the reference proxy are written independently; here they must agree.

A disagreement means one of them misreads the specification: find out which before changing
either. Only a test may import both: harness/ and mocks/ never import proxy_impl
(tests/test_boundaries.py holds that rule)."""

from hypothesis import given
from hypothesis import strategies as st

from proxyproof.harness import oracle
from proxyproof.proxy_impl.behaviour import FIXED, KONG
from proxyproof.proxy_impl.codecs import raw

ROLES = st.sampled_from(["system", "user", "assistant", "tool"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
MESSAGES = st.lists(st.fixed_dictionaries({"role": ROLES, "content": TEXT}), min_size=1, max_size=8)


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
