"""Properties of the llama2 codecs over generated conversations and replies (pure, no I/O)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from proxyproof.proxy_impl.behaviour import FIXED, KONG
from proxyproof.proxy_impl.codecs import Exchange, codec_for
from proxyproof.proxy_impl.codecs.raw import LUA_SPACE
from proxyproof.proxy_impl.model import ReplyStamp

CHAT = "llm/v1/chat"
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda text: "[/INST]" not in text and "[INST]" not in text
)
ROLES = st.sampled_from(["system", "user", "assistant", "tool"])
MESSAGES = st.lists(st.fixed_dictionaries({"role": ROLES, "content": TEXT}), min_size=1, max_size=8)
STAMP = ReplyStamp("unused", 0)  # the raw codec writes no id or created


def exchange(behaviour):
    return Exchange(CHAT, "llama2", False, None, None, behaviour)


@settings(max_examples=150)
@given(MESSAGES)
def test_fixed_prompt_has_balanced_inst_markers_and_every_message(messages):
    inputs = codec_for("raw").encode({"messages": messages}, exchange(FIXED))["inputs"]
    assert inputs.startswith("<s>[INST] ")
    assert inputs.count("[INST]") == inputs.count("[/INST]")
    position = 0
    for message in messages:  # every message appears, in order
        position = inputs.index(message["content"], position)


@settings(max_examples=150)
@given(MESSAGES)
def test_kong_prompt_never_contains_assistant_turns_beyond_the_second(messages):
    inputs = codec_for("raw").encode({"messages": messages}, exchange(KONG))["inputs"]
    assert inputs.startswith("<s>[INST] <<SYS>> ")
    kept = sum(1 for m in messages[2:] if m["role"] in ("system", "user"))
    assert inputs.count("</s>") + inputs.count("<s>[INST]") == 1 + kept


@settings(max_examples=150)
@given(prompt=TEXT, reply=TEXT)
def test_raw_reply_is_the_text_after_the_prompt(prompt, reply):
    generated = f"<s>[INST] {prompt} [/INST]{reply}"
    for body in ({"data": [{"generated_text": generated}]}, [{"generated_text": generated}]):
        upstream = json.dumps(body).encode()
        decoded = json.loads(codec_for("raw").decode(upstream, exchange(FIXED), STAMP))
        assert decoded["choices"][0]["message"]["content"] == reply.strip(LUA_SPACE)
