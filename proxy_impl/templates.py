"""``$(headers.x)``, ``$(uri_captures.x)`` and ``$(query_params.x)`` in ``model.name`` and
``model.options.upstream_url``, resolved per request (check 1 of
docs/kong-behaviour.md#request-checks).

Each template is replaced by the request value it names, as is (``upstream_url`` is rendered by
``url_templates``, which encodes each value for where it lands); a missing value or a malformed
template is the client's 400, with Kong's messages. The config loader checks the templates'
shape with the same rules, so only a missing value is left for request time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

TEMPLATE = re.compile(r"\$\((.*?)\)")
SOURCES = ("headers", "uri_captures", "query_params")


class TemplateError(ValueError):
    pass


class UnsafeValue(TemplateError):
    """A request value that would change what a rendered field points at or how it is sent, not
    only what it says."""


@dataclass(slots=True)
class RequestValues:
    headers: Mapping[str, str]  # case-insensitive (a CIMultiDict)
    query: Mapping[str, str]
    captures: Mapping[str, str]

    def lookup(self, source: str, key: str) -> str | None:
        by_source = {
            "headers": self.headers,
            "query_params": self.query,
            "uri_captures": self.captures,
        }
        return by_source[source].get(key)


def render(value: str, values: RequestValues) -> str:
    """``value`` with every template replaced; raises ``TemplateError`` with Kong's message."""
    if "$(" not in value:  # the common case: nothing to render
        return value

    def substitute(found: re.Match[str]) -> str:
        return resolve(*parse_expression(found.group(1), value), values)

    return TEMPLATE.sub(substitute, value)


def render_text(value: str, values: RequestValues) -> str:
    """``render``, for a field that goes into JSON and a response header (the model name): a
    value with a control character (CR/LF would split the header) or a lone surrogate (what
    undecodable header bytes become) is refused."""
    if "$(" not in value:
        return value

    def substitute(found: re.Match[str]) -> str:
        source, key = parse_expression(found.group(1), value)
        resolved = resolve(source, key, values)
        if not _is_text(resolved):
            raise UnsafeValue(f"{source} key {key} is not printable text")
        return resolved

    return TEMPLATE.sub(substitute, value)


def _is_text(value: str) -> bool:
    if not value.isprintable():  # C0, DEL, C1 and other non-printing characters
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def resolve(source: str, key: str, values: RequestValues) -> str:
    """The request value a template names; raises ``TemplateError`` when there is none."""
    resolved = values.lookup(source, key)
    if resolved is None:
        raise TemplateError(f"{source} key {key} was not provided")
    return resolved


def template_problems(value: str) -> list[str]:
    """What is wrong with the templates in ``value`` (checked once, when the config loads)."""
    problems = []
    for expression in TEMPLATE.findall(value):
        try:
            parse_expression(expression, value)
        except TemplateError as error:
            problems.append(str(error))
    return problems


def parse_expression(expression: str, value: str) -> tuple[str, str]:
    """``source.key`` of one template in ``value``."""
    source, dot, key = expression.partition(".")
    if not dot or not key or "." in key:
        raise TemplateError(f"cannot parse expression for field '{value}'")
    if source not in SOURCES:
        raise TemplateError(f"source '{source}' is not supported")
    return source, key
