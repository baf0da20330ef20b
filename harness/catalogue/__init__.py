"""The conformance catalogue: cases as data (``harness/cases/*.yaml``), loaded and selected.

    from proxyproof.harness.catalogue import load_catalogue, select
    cases = select(load_catalogue(), profiles=["core", "auth"], expression="ollama and not stream")
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from .loader import CatalogueError, load_catalogue
from .model import Case, ClientRequest, Expectation

PROFILES = ("core", "seed", "streaming", "auth", "errors", "headers", "options", "kong", "security")

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


class Selectable(Protocol):
    """What ``-k`` reads: a catalogue case, or another profile's check."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def hosting(self) -> str: ...
    @property
    def features(self) -> tuple[str, ...]: ...


def matches(case: Selectable, expression: str) -> bool:
    """pytest's ``-k``: words match as substrings of the id, title, features and hosting,
    combined with ``and``, ``or``, ``not`` and parentheses."""
    haystack = " ".join([case.id, case.title, case.hosting, *case.features]).lower()
    words = []
    for token in _TOKEN.findall(expression):
        if token in ("(", ")", "and", "or", "not"):
            words.append(token)
        else:
            words.append(str(token.lower() in haystack))
    try:
        return bool(eval(" ".join(words) or "True", {"__builtins__": {}}, {}))  # only bools
    except SyntaxError:
        raise CatalogueError(f"-k {expression!r}: not a valid expression") from None


def select(cases: Iterable[Case], profiles: Sequence[str] = (), ids: Sequence[str] = (),
           expression: str = "") -> list[Case]:
    """The cases in any of ``profiles`` (all when empty), restricted to ``ids`` when given, that
    match ``expression``; unknown profiles and ids are errors."""
    cases = list(cases)
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        raise CatalogueError(f"unknown profile(s) {', '.join(sorted(unknown))}; "
                             f"choose from {', '.join(PROFILES)}")
    known_ids = {case.id for case in cases}
    missing = [i for i in ids if i not in known_ids]
    if missing:
        raise CatalogueError(f"unknown case id(s) {', '.join(missing)} (see --list)")
    chosen = [case for case in cases
              if (not profiles or set(profiles) & set(case.features))
              and (not ids or case.id in ids)
              and (not expression or matches(case, expression))]
    return chosen


__all__ = ["PROFILES", "Case", "CatalogueError", "ClientRequest", "Expectation",
           "load_catalogue", "matches", "select"]
