"""``$(headers.x)``, ``$(uri_captures.x)`` and ``$(query_params.x)`` in ``model.name`` and
``model.options.upstream_url``, resolved per request (kong_semantics §1.2 check 1).

Each template is replaced by the request value it names; a missing value or a malformed
template is the client's 400, with Kong's messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .plugin_config import TEMPLATE


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class RequestValues:
    headers: Mapping[str, str]  # case-insensitive (a CIMultiDict)
    query: Mapping[str, str]
    captures: Mapping[str, str]

    def lookup(self, source: str, key: str) -> str | None:
        if source == "headers":
            return self.headers.get(key)
        if source == "query_params":
            return self.query.get(key)
        if source == "uri_captures":
            return self.captures.get(key)
        raise TemplateError(f"source '{source}' is not supported")


def render(value: str, values: RequestValues) -> str:
    """``value`` with every template replaced; raises ``TemplateError`` with Kong's message."""

    def substitute(found) -> str:  # noqa: ANN001 - a re.Match
        source, dot, key = found.group(1).partition(".")
        if not dot or not key or "." in key:
            raise TemplateError(f"cannot parse expression for field '{value}'")
        resolved = values.lookup(source, key)
        if resolved is None:
            raise TemplateError(f"{source} key {key} was not provided")
        return resolved

    return TEMPLATE.sub(substitute, value)


def has_templates(value: str | None) -> bool:
    return value is not None and TEMPLATE.search(value) is not None
