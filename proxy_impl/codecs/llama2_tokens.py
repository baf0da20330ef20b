"""Llama 2's control sequences in client text, and the raw prompt injection policy
(docs/prompt-injection.md).

The raw format hands the upstream one prompt string, so text a client typed and the template's
own markers end up side by side: ``<s>``/``</s>`` become the BOS/EOS ids (HF tokenizers and
llama.cpp parse special-token text in a prompt), and ``[INST]``, ``[/INST]``, ``<<SYS>>``,
``<</SYS>>`` are the text Llama 2 chat was trained to read as turn and system-block boundaries.
Meta's reference ``chat_completion`` refuses its four tags in any message (``UNSAFE_ERROR``).

Matched: ``<s>`` and ``</s>`` exactly, as the tokenizer matches them (``<S>`` or ``< s >`` is
plain text to it, and the model only ever saw the ids); the four tags in any ASCII case, with
ASCII whitespace allowed after the opening bracket, around the slash and before the closing one
(``[ /inst ]``, ``<< SYS >>``): the model reads them as text, so a near miss may still read as
one, and breaking it costs an invisible character.
"""

from __future__ import annotations

import json
import re

from .exchange import EncodeError

_SPACE = r"[ \t\n\r\f\v]*"
# No match can start inside another one, so a left-to-right scan finds them all.
CONTROL_SEQUENCE = re.compile(
    rf"</?s>|(?i:<<{_SPACE}/?{_SPACE}sys{_SPACE}>>|\[{_SPACE}/?{_SPACE}inst{_SPACE}\])", re.ASCII
)
# U+200B ZERO WIDTH SPACE after the opening bracket: invisible, left alone by NFC/NFKC, neither
# a bracket, a letter nor whitespace to the matcher, so it cannot help form a new sequence.
BREAK = "\u200b"
REJECTED = "special tags are not allowed as part of the prompt"


class UnsafePrompt(EncodeError):
    """Client text holds a Llama 2 control sequence and the policy is to refuse it (a 400)."""


def control_sequences(text: str) -> list[str]:
    return CONTROL_SEQUENCE.findall(text)


def neutralise(text: str) -> str:
    """``text`` with every control sequence broken by ``BREAK`` after its first character."""
    return CONTROL_SEQUENCE.sub(lambda match: match[0][0] + BREAK + match[0][1:], text)


def refuse_control_sequences(text: str, where: str) -> str:
    """``text`` unchanged, or ``UnsafePrompt`` naming the first sequence and where it was."""
    found = CONTROL_SEQUENCE.search(text)
    if found:
        raise UnsafePrompt(f"{REJECTED}: {where} contains {json.dumps(found[0])}")
    return text
