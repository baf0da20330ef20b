"""Semantic routing's pure part: the text that is embedded, the distances, and the ranking of the
targets for one prompt (docs/balancer.md#semantic-routing).

The index is the targets' description vectors, kept in process: a route has a handful of targets,
so a linear scan in plain Python is all the search it needs.

- The prompt is the last user message of a chat (its text parts joined), or a completion's prompt.
- The distance is ``1 - cosine similarity`` or the euclidean distance; a description matches when
  its distance is at most ``vectordb.threshold``.
- The nearest matching description wins; the targets sharing it are tried by weight, heaviest
  first, then the ``CATCHALL`` targets. Nothing near and no ``CATCHALL``: no target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..model import CATCHALL, CHAT, Target

Vector = Sequence[float]


def prompt_text(body: Mapping[str, Any], route_type: str) -> str | None:
    """What is embedded for ``body``: None when it has no text to route on."""
    if route_type != CHAT:
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) and prompt.strip() else None
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            text = _content_text(message.get("content"))
            if text:
                return text
    return None


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content if content.strip() else None
    if isinstance(content, list):  # OpenAI content parts: the text ones
        parts = [part.get("text") for part in content if isinstance(part, Mapping)]
        text = "\n".join(part for part in parts if isinstance(part, str))
        return text if text.strip() else None
    return None


def distance(a: Vector, b: Vector, metric: str) -> float:
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths ({len(a)} and {len(b)})")
    if metric == "euclidean":
        return math.sqrt(math.fsum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return 1.0 - dot / norms if norms else 1.0


def descriptions(targets: Sequence[Target]) -> list[str]:
    """The distinct descriptions that are matched by meaning (not CATCHALL), in target order."""
    found = (t.description for t in targets if t.description and t.description != CATCHALL)
    return list(dict.fromkeys(found))


def rank(
    prompt: Vector,
    vectors: Mapping[str, Vector],
    targets: Sequence[Target],
    *,
    metric: str,
    threshold: float,
) -> tuple[tuple[int, ...], float | None]:
    """The targets to try for ``prompt``, best first, and the nearest description's distance
    (None when there is no description to compare with)."""
    nearest: str | None = None
    best: float | None = None
    for text, vector in vectors.items():
        found = distance(prompt, vector, metric)
        if best is None or found < best:
            nearest, best = text, found
    chosen = nearest if best is not None and best <= threshold else None
    return _by_weight(targets, chosen) + catchall(targets), best


def catchall(targets: Sequence[Target]) -> tuple[int, ...]:
    """The CATCHALL targets, heaviest first."""
    return _by_weight(targets, CATCHALL)


def _by_weight(targets: Sequence[Target], description: str | None) -> tuple[int, ...]:
    if description is None:
        return ()
    group = [i for i, target in enumerate(targets) if target.description == description]
    return tuple(sorted(group, key=lambda i: (-targets[i].weight, i)))
