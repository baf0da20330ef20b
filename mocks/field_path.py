"""Dotted paths into a JSON body, for ``--ignore-field`` and ``--redact-field``. Pure.

``seed`` is the top-level ``seed``; ``options.seed`` is nested; a number picks a list item
(``messages.0.content``) and ``*`` any key or item (``messages.*.images``). A path that does not
exist in a body leaves it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WILDCARD = "*"
_GONE = object()  # what an edit returns to remove the field


def parse(text: str) -> tuple[str, ...]:
    """The parts of a dotted path; ``ValueError`` for an empty one or an empty part."""
    parts = tuple(text.strip().split("."))
    if not text.strip() or any(not part for part in parts):
        raise ValueError(f"not a field path: {text!r} (use dotted names, e.g. options.seed)")
    return parts


def _edit(value: Any, parts: tuple[str, ...], change: Callable[[Any], Any]) -> Any:
    """A copy of ``value`` with ``change`` applied at ``parts`` (``_GONE`` removes it)."""
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        keys = list(value) if head == WILDCARD else [head] if head in value else []
        if not keys:
            return value
        edited = dict(value)
        for key in keys:
            new = change(value[key]) if not rest else _edit(value[key], rest, change)
            if new is _GONE:
                del edited[key]
            else:
                edited[key] = new
        return edited
    if isinstance(value, list):
        if head == WILDCARD:
            indexes = range(len(value))
        elif head.isdigit() and int(head) < len(value):
            indexes = range(int(head), int(head) + 1)
        else:
            return value
        edited_list = list(value)
        for index in reversed(indexes):  # reversed: a removal keeps earlier indexes valid
            new = change(value[index]) if not rest else _edit(value[index], rest, change)
            if new is _GONE:
                del edited_list[index]
            else:
                edited_list[index] = new
        return edited_list
    return value


def without(value: Any, paths: Iterable[tuple[str, ...]]) -> Any:
    """``value`` with the fields at ``paths`` left out."""
    for parts in paths:
        value = _edit(value, parts, lambda _: _GONE)
    return value


def masked(value: Any, paths: Iterable[tuple[str, ...]], mask: str) -> Any:
    """``value`` with the fields at ``paths`` replaced by ``mask``."""
    for parts in paths:
        value = _edit(value, parts, lambda _: mask)
    return value
