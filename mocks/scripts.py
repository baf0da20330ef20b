"""Control-API scripts: parsing a posted script, matching it against a request, and the store.

A script is ``{"match": {...}, "times": N, <one action>}``: ``response`` answers at once,
``reply`` replaces the generated text, ``fault`` (``fault_spec``) replaces or alters the reply.
Scripts are tried in the order they were added; the first match wins and uses up one of its times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import fault_spec
from .base import Call, Reply
from .glob import Glob

_MATCH_FIELDS = frozenset({"method", "path", "body_contains", "headers"})
_ACTIONS = ("response", "reply", "fault")


@dataclass
class Script:
    id: int
    spec: dict[str, Any]  # as posted, for listing
    method: str | None
    path: Glob | None  # '*' matches anything; without one, exactly that path
    body_contains: bytes | None
    headers: tuple[tuple[str, str], ...]
    remaining: int | None  # None: always
    response: Reply | None = None
    reply: str | None = None
    fault: fault_spec.Fault | None = None
    hits: int = 0

    def matches(self, call: Call) -> bool:
        return (
            self.remaining != 0
            and (self.method is None or call.method == self.method)
            and (self.path is None or self.path.match(call.path))
            and (self.body_contains is None or self.body_contains in call.body)
            and all(call.headers.get(name) == value for name, value in self.headers)
        )

    def to_json(self) -> dict[str, Any]:
        listed = {
            "id": self.id,
            "match": self.spec.get("match", {}),
            "times": self.spec.get("times"),
            "remaining": self.remaining,
            "hits": self.hits,
        }
        for action in _ACTIONS:
            if action in self.spec:
                listed[action] = self.spec[action]
        return listed


def parse_script(script_id: int, spec: Any) -> Script:
    """A ``Script`` from its control-API JSON; ``ValueError`` with a clear message if invalid."""
    if not isinstance(spec, dict):
        raise ValueError("a script must be a JSON object")
    unknown = set(spec) - {"match", "times", *_ACTIONS}
    if unknown:
        raise ValueError(f"unknown script field(s): {', '.join(sorted(unknown))}")
    match = spec.get("match") or {}
    if not isinstance(match, dict):
        raise ValueError("'match' must be an object")
    unknown = set(match) - _MATCH_FIELDS
    if unknown:
        raise ValueError(
            f"unknown match field(s): {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(_MATCH_FIELDS))}"
        )
    for name in ("method", "path", "body_contains"):
        if name in match and not isinstance(match[name], str):
            raise ValueError(f"match.{name} must be a string")
    path = match.get("path")
    if path is not None and not path.startswith("/"):
        raise ValueError("match.path must start with '/'")
    headers = fault_spec.string_map("match.headers", match.get("headers", {}))
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ValueError("'times' must be a positive integer (omit it for always)")
    actions = [action for action in _ACTIONS if action in spec]
    if len(actions) != 1:
        raise ValueError("a script needs exactly one of 'response', 'reply' or 'fault'")
    script = Script(
        id=script_id,
        spec=spec,
        method=match["method"].upper() if "method" in match else None,
        path=None if path is None else Glob(path),
        body_contains=match["body_contains"].encode() if "body_contains" in match else None,
        headers=tuple(headers.items()),
        remaining=times,
    )
    if actions[0] == "response":
        script.response = fault_spec.parse_response(spec["response"])
    elif actions[0] == "reply":
        if not isinstance(spec["reply"], str):
            raise ValueError("'reply' must be a string: the text of the reply")
        script.reply = spec["reply"]
    else:
        script.fault = fault_spec.parse_fault(spec["fault"])
    return script


class Scripts:
    """Scripted responses, tried in the order they were added."""

    def __init__(self) -> None:
        self._scripts: list[Script] = []
        self._next_id = 1

    def __bool__(self) -> bool:
        return bool(self._scripts)

    def add(self, spec: Any) -> Script:
        script = parse_script(self._next_id, spec)
        self._next_id += 1
        self._scripts.append(script)
        return script

    def match(self, call: Call) -> Script | None:
        """The first script that matches ``call``, which uses up one of its ``times``."""
        for script in self._scripts:
            if script.matches(call):
                script.hits += 1
                if script.remaining is not None:
                    script.remaining -= 1
                return script
        return None

    def all(self) -> list[Script]:
        return list(self._scripts)

    def get(self, script_id: int) -> Script | None:
        return next((s for s in self._scripts if s.id == script_id), None)

    def remove(self, script_id: int) -> bool:
        script = self.get(script_id)
        if script is not None:
            self._scripts.remove(script)
        return script is not None

    def clear(self) -> None:
        self._scripts.clear()
