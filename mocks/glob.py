"""Control-API globs (``/models/*``): ``*`` matches any run of characters, everything else itself.

Matched by the greedy two-pointer algorithm, without regular expressions: when a literal
character fails after a ``*``, only the most recent ``*`` is retried one character further on,
so the work is at most len(pattern) x len(text) steps, and about len(text) for the usual patterns.
A regex such as ``.*a.*a.*a...b`` backtracks instead: len(text) to the power of the stars.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Glob:
    pattern: str

    def match(self, text: str) -> bool:
        return match(self.pattern, text)


def match(pattern: str, text: str, counter: list[int] | None = None) -> bool:
    """Whether ``text`` matches ``pattern`` whole. ``counter``, if given, gets the steps taken
    added to its first item (for tests of the bound)."""
    p = t = 0  # next pattern and text positions
    star = -1  # position in the pattern just after the latest '*'
    resume = 0  # where in the text that '*' would next let the rest start
    steps = 0
    while t < len(text):
        steps += 1
        if p < len(pattern) and pattern[p] == "*":
            star, p, resume = p + 1, p + 1, t  # the '*' matches nothing, for now
        elif p < len(pattern) and pattern[p] == text[t]:
            p, t = p + 1, t + 1
        elif star >= 0:
            resume += 1  # the latest '*' swallows one more character; retry what follows it
            p, t = star, resume
        else:
            break
    else:
        while p < len(pattern) and pattern[p] == "*":
            p += 1
    if counter is not None:
        counter[0] += steps
    return t == len(text) and p == len(pattern)
