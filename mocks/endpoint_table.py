"""Finding the endpoints a request path names: path -> endpoints by method.

Endpoint paths are aiohttp patterns (``/models/{model_id:.+}``); matching them here rather than
in aiohttp's router lets the pipeline answer unknown paths and wrong methods in each server's own
dialect.
"""

from __future__ import annotations

import re

from .base import Endpoint

_PLACEHOLDER = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})+))?\}")


class EndpointTable:
    """Path -> endpoints by method. Static paths are one dict lookup; patterns are compiled once."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self._static: dict[str, dict[str, Endpoint]] = {}
        patterns: dict[str, dict[str, Endpoint]] = {}
        for endpoint in endpoints:
            table = patterns if "{" in endpoint.path else self._static
            table.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        self._dynamic = [(_compile(path), methods) for path, methods in patterns.items()]

    def resolve(self, path: str) -> tuple[dict[str, Endpoint], dict[str, str]] | None:
        methods = self._static.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self._dynamic:
            found = pattern.fullmatch(path)
            if found:
                return methods, found.groupdict()
        return None


def _compile(path: str) -> re.Pattern[str]:
    """An aiohttp route pattern (``/models/{model_id:.+}``) as a regular expression."""
    regex, position = "", 0
    for placeholder in _PLACEHOLDER.finditer(path):
        regex += re.escape(path[position : placeholder.start()])
        name, expression = placeholder.group(1), placeholder.group(2) or r"[^{}/]+"
        regex += f"(?P<{name}>{expression})"
        position = placeholder.end()
    return re.compile(regex + re.escape(path[position:]))
