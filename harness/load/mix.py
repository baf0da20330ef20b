"""The mix of a load run: which kinds of request, in what proportions (``--mix FILE``).

A *kind* names one class of request and is how results are reported: ``"<hosting> <route>"``
(``ollama chat``), with ``" stream"`` for a streamed one and ``" error"`` for a catalogue case
that must fail (an unreachable upstream, a bad body, a wrong key), and ``"hostile"`` for a
request malformed on purpose. A mix file (YAML or JSON) sets any of::

    routes: {chat: 3, completions: 1}       # relative weights
    hostings: {ollama: 1, huggingface: 1, llamacpp: 1, gguf: 1}
    stream: 0.3                             # the share of well-formed requests that stream
    failing: 0.05                           # the share of all requests that must fail
    hostile: 0.05                           # the share of all requests that are hostile

A weight of 0 leaves that route or hosting out. Shares are of all requests sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..hostings import HOSTINGS

ROUTES = ("chat", "completions")
HOSTILE = "hostile"


class MixError(ValueError):
    """A mix file that cannot be used, said in one line."""


@dataclass(frozen=True)
class Mix:
    routes: Mapping[str, float] = field(default_factory=lambda: {"chat": 3.0,
                                                                  "completions": 1.0})
    hostings: Mapping[str, float] = field(
        default_factory=lambda: {hosting.key: 1.0 for hosting in HOSTINGS})
    stream: float = 0.3
    failing: float = 0.05
    hostile: float = 0.05

    def __post_init__(self) -> None:
        for name in ("stream", "failing", "hostile"):
            share = getattr(self, name)
            if not 0 <= share <= 1:
                raise MixError(f"{name}: {share} is not a share between 0 and 1")
        if self.failing + self.hostile > 1:
            raise MixError("failing + hostile is more than 1")
        _weights("routes", self.routes, ROUTES)
        _weights("hostings", self.hostings, [hosting.key for hosting in HOSTINGS])
        if not any(self.routes.values()) or not any(self.hostings.values()):
            raise MixError("every route or every hosting has weight 0: nothing to send")

    def hostings_used(self) -> list[str]:
        return [key for key, weight in self.hostings.items() if weight > 0]

    def weights(self, available: Iterable[str]) -> dict[str, float]:
        """Each available kind's share of the requests (they sum to 1), from the mix: a share
        the catalogue has no request for goes to the others."""
        available = set(available)
        routes = _normalised(self.routes)
        hostings = _normalised(self.hostings)
        wellformed = 1 - self.failing - self.hostile
        wanted: dict[str, float] = {HOSTILE: self.hostile}
        for hosting, hosting_share in hostings.items():
            for route, route_share in routes.items():
                base = f"{hosting} {route}"
                share = hosting_share * route_share
                wanted[base] = wellformed * share * (1 - self.stream)
                wanted[f"{base} stream"] = wellformed * share * self.stream
                wanted[f"{base} error"] = self.failing * share
        kept = {kind: share for kind, share in wanted.items() if share > 0 and kind in available}
        total = sum(kept.values())
        if not total:
            raise MixError("the mix selects no request the catalogue has")
        return {kind: share / total for kind, share in sorted(kept.items())}


def _weights(name: str, given: Mapping[str, float], known: Iterable[str]) -> None:
    unknown = set(given) - set(known)
    if unknown:
        raise MixError(f"{name}: unknown {', '.join(sorted(unknown))} (known: "
                       f"{', '.join(known)})")
    for key, weight in given.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise MixError(f"{name}.{key}: a weight is a number, 0 or more")


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {key: weight / total for key, weight in weights.items() if weight > 0}


def load_mix(path: str) -> Mix:
    """The mix in ``path``; MixError naming the file and what is wrong."""
    try:
        document: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise MixError(f"{path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise MixError(f"{path}: not valid YAML or JSON: {error}") from None
    if document is None:
        return Mix()
    if not isinstance(document, dict):
        raise MixError(f"{path}: a mix is a mapping (routes, hostings, stream, failing, "
                       "hostile)")
    known = {f.name for f in fields(Mix)}
    unknown = set(document) - known
    if unknown:
        raise MixError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}; known: "
                       f"{', '.join(sorted(known))}")
    defaults = Mix()
    try:
        for name in ("routes", "hostings"):
            if name in document and not isinstance(document[name], dict):
                raise MixError(f"{name}: a mapping of weights")
        for name in ("stream", "failing", "hostile"):
            value = document.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MixError(f"{name}: a number between 0 and 1")
        return Mix(routes=document.get("routes", defaults.routes),
                   hostings=document.get("hostings", defaults.hostings),
                   stream=float(document.get("stream", defaults.stream)),
                   failing=float(document.get("failing", defaults.failing)),
                   hostile=float(document.get("hostile", defaults.hostile)))
    except MixError as error:
        raise MixError(f"{path}: {error}") from None
