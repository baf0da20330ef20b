"""Config text → the decoded document, for the ``--config`` file and the Admin API alike.

JSON is tried first (Kong's order, and a large JSON document decodes in milliseconds), then YAML
through libyaml when PyYAML has it (a 20,000-route YAML file parses several times faster than
with the pure-Python parser). A syntax error says where it is (line, column, and the field
when the line starts with one Kong has) and never repeats the text: PyYAML's own message quotes
the offending line, and that line may be ``header_value: Bearer <key>``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from . import kong_schema as kong

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The field named by the line an error is on; only Kong's own field names are repeated, so a
# line that starts with something else (a secret pasted at the start of a line) is not.
_KEY = re.compile(r"""\s*(?:-\s+)*["']?([A-Za-z_][A-Za-z0-9_]*)["']?\s*:""")
_QUOTED = re.compile(r"'([^']{2,})'")  # PyYAML quotes aliases and tags: user text, kept out


class ConfigTextError(ValueError):
    """The text is neither JSON nor YAML; the message is safe to print and to answer with."""


class _Loading(_Loader):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader, remembering how it typed each plain scalar: a config repeats the
    same keys and values thousands of times, and typing each one runs a list of regexes."""

    _types: dict[tuple[Any, ...], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if not isinstance(value, str):
            return super().resolve(kind, value, implicit)
        key = (kind, value, implicit)
        tag = self._types.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._types) < 100_000:
                self._types[key] = tag
        return tag


def parse_config_text(text: str) -> Any:
    """The document ``text`` holds; raises ``ConfigTextError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigTextError("nested too deeply") from None
    except ValueError:
        pass  # not JSON: YAML, whose errors say more about YAML text
    try:
        return yaml.load(text, Loader=_Loading)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise ConfigTextError(describe_yaml_error(error, text)) from None
    except RecursionError:
        raise ConfigTextError("nested too deeply") from None


def describe_yaml_error(error: yaml.YAMLError, text: str) -> str:
    """``line L, column C (in field): what went wrong``, without the text of the line."""
    if isinstance(error, yaml.reader.ReaderError):
        line, column = _place(text, error.position)
        code = error.character if isinstance(error.character, int) else ord(error.character)
        return f"line {line}, column {column}: character #x{code:04x} is not allowed in YAML text"
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return "not valid YAML"
    mark = error.problem_mark
    field = _field(text, mark.line)
    if not field and error.context_mark is not None:  # an unclosed quote fails where text ends
        field = _field(text, error.context_mark.line)
    what = "; ".join(
        _QUOTED.sub(_mask, part) for part in (error.context, error.problem) if part
    )
    return f"line {mark.line + 1}, column {mark.column + 1}{field}: {what}"


def _field(text: str, line: int) -> str:
    lines = text.splitlines()
    if line >= len(lines):
        return ""
    found = _KEY.match(lines[line])
    if found is None or found[1] not in _FIELD_NAMES:
        return ""
    name = found[1]
    return f" (in {name}, value not shown)" if name in kong.SECRET_FIELDS else f" (in {name})"


def _mask(found: re.Match[str]) -> str:
    return found[0] if found[1].startswith("<") else "'…'"  # '<scalar>' is a token kind


def _place(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


_FIELD_NAMES = frozenset().union(
    kong.TOP_LEVEL_READ, kong.METADATA, kong.SERVICE_FIELDS, kong.ROUTE_FIELDS, kong.PLUGIN_FIELDS,
    kong.AI_PROXY_FIELDS, kong.AI_PROXY_ADVANCED_FIELDS, kong.TARGET_FIELDS, kong.MODEL_FIELDS,
    kong.LOGGING_FIELDS, kong.BALANCER_FIELDS, kong.LLAMA2_OPTIONS, kong.AUTH_FIELDS,
    kong.OTHER_PROVIDER_OPTIONS, kong.OTHER_PROVIDER_AUTH,
)  # fmt: skip
