"""Deterministic text generation for the mock upstreams.

A reply is a pure function of (model, prompt key, seed): the same request always gets the same
text, so a test — or the harness's oracle — can predict what a mock answered from what the
journal says it received. Streamed and non-streamed replies share one token list, so the deltas
of a stream concatenate to the non-streamed text, and token counts always agree with the text.

Tokens are words with their leading whitespace (" world"), the way BPE vocabularies split English.
Embeddings are deterministic too: a vector is a function of the text and its length only, and
texts that share words have close vectors (``word_vectors``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import word_vectors

_TOKEN = re.compile(r"\s*\S+|\s+")

VOCABULARY = (
    "the answer is two because one and one make two in ordinary arithmetic llamas graze on high "
    "plateaus while models predict the next token from context a gateway forwards every request "
    "to its upstream and translates the reply so that clients see one familiar format numbers "
    "words sentences streams arrive piece by piece until the final chunk says done"
).split()


def tokenize(text: str) -> list[str]:
    """Split text into tokens; ``"".join(tokenize(t)) == t`` always holds."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def token_id(token: str) -> int:
    """A stable vocabulary id in Llama 2's range (32000 entries)."""
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "big") % 32000


def chat_key(messages: Iterable[Mapping[str, object]]) -> str:
    """The prompt key of a conversation: role and content of each message, canonically encoded."""
    return json.dumps(
        [[str(m.get("role", "")), m.get("content")] for m in messages],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def chat_prompt_tokens(messages: Iterable[Mapping[str, object]]) -> int:
    """Prompt token count of a conversation: its text contents plus one per message."""
    total = 0
    for message in messages:
        content = message.get("content")
        total += 1 + (count_tokens(content) if isinstance(content, str) else 0)
    return total


def reply_tokens(model: str, prompt_key: str, seed: int | None = None) -> list[str]:
    """The full (uncut) reply to a prompt, as tokens: 6 to 20 words ending in a full stop."""
    digest = hashlib.sha256(f"{model}\0{prompt_key}\0{seed}".encode()).digest()
    length = 6 + digest[0] % 15
    words = [VOCABULARY[digest[1 + i] % len(VOCABULARY)] for i in range(length)]
    words[0] = words[0].capitalize()
    words[-1] += "."
    return [words[0]] + [" " + word for word in words[1:]]


@dataclass(frozen=True)
class Generation:
    """What a mock answers: the text, its tokens, why it stopped and the counts."""

    tokens: tuple[str, ...]
    finish_reason: str  # "stop" (natural end or a stop sequence) or "length" (token limit hit)
    prompt_tokens: int
    stopped_by: str = ""  # the stop sequence that ended the text, if any

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


def generate(
    model: str,
    prompt_key: str,
    *,
    prompt_tokens: int,
    seed: int | None = None,
    max_tokens: int | None = None,
    stop: Iterable[str] = (),
    reply: str | None = None,
) -> Generation:
    """Generate the reply to ``prompt_key``.

    ``reply`` replaces the generated text (a scripted reply). ``max_tokens`` (None or negative
    means unlimited) cuts the reply and makes the finish reason ``length``. A ``stop`` sequence
    ends the text before it (the sequence itself is not returned) with finish reason ``stop``.
    """
    tokens = tokenize(reply) if reply is not None else reply_tokens(model, prompt_key, seed)
    finish, stopped_by = "stop", ""
    text = "".join(tokens)
    cut = min(((text.find(s), s) for s in stop if s and s in text), default=None)
    if cut is not None:
        text, stopped_by = text[: cut[0]], cut[1]
        tokens = tokenize(text)
    if max_tokens is not None and 0 <= max_tokens < len(tokens):
        tokens, finish, stopped_by = tokens[:max_tokens], "length", ""
    return Generation(tuple(tokens), finish, prompt_tokens, stopped_by)


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``, close to the vectors of texts that share its words
    (a hashed bag of words: ``word_vectors``); a shorter one is a prefix, renormalised."""
    return word_vectors.embedding_vector(text, dimensions)
