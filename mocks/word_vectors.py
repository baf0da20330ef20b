"""Embedding vectors in which texts that share words are close: a hashed bag of words.

Each word (a run of letters and digits, lower-cased, a plural's final "s" dropped; a few very
common English words left out) stands for a fixed pseudo-random direction derived from its hash,
and a text's vector is the normalised sum of its words' directions. So the cosine similarity of
two texts grows with the words they share, and texts with no word in common are nearly orthogonal
(random directions in hundreds of dimensions are). That is enough for a gateway's semantic
routing to find the nearest description in tests, without a model. A text with no such word
stands for itself as one word.

Deterministic: a function of the text and the length only; a shorter vector is a prefix of a
longer one, renormalised. Values go through float32, the precision a base64 encoding carries.
"""

from __future__ import annotations

import hashlib
import re
import struct

_WORD = re.compile(r"[^\W_]+")
COMMON_WORDS = frozenset(
    "a an and are as at be by can do for from how i in is it me my of on or please that the "
    "this to was what when where which who why will with you your".split()
)


def words(text: str) -> list[str]:
    found = [_singular(word) for word in _WORD.findall(text.lower()) if word not in COMMON_WORDS]
    return found or [text]


def _singular(word: str) -> str:
    """Crude, on purpose: "poems" and "poem" are one word; "class" and "is" stay as they are."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def direction(word: str, dimensions: int) -> list[float]:
    """The word's fixed direction (not normalised): uniform values in [-1, 1]."""
    raw = hashlib.shake_256(word.encode("utf-8", "surrogatepass")).digest(2 * dimensions)
    return [v / 32767.5 - 1.0 for v in struct.unpack(f"<{dimensions}H", raw)]


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for ``text``, close to those of texts sharing its words."""
    total = [0.0] * dimensions
    for word in words(text):
        for i, value in enumerate(direction(word, dimensions)):
            total[i] += value
    norm = sum(v * v for v in total) ** 0.5 or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in total))
    return list(struct.unpack(f"<{dimensions}f", packed))
