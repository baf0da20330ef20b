"""Typed field reads from a decoded YAML/JSON config, with Kong's schema messages and field paths.

Every problem names the field it is about (``services[0].routes[1].plugins[0].config.auth``), so
a user can find it in a long file. Reads never raise: a bad value records an error and reads as
``None`` (or the default), so one pass reports every problem at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Problems:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}" if path else message)

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}" if path else message)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def is_unset(value: Any) -> bool:
    """Kong exports (``deck dump``) write every field, unset ones as null."""
    return value is None


@dataclass(frozen=True)
class Record:
    """A mapping being read, with its path and the problems it reports to."""

    data: Mapping[str, Any]
    path: str
    problems: Problems

    @classmethod
    def read(cls, value: Any, path: str, problems: Problems) -> Record | None:
        if not isinstance(value, Mapping):
            problems.error(path, "expected a record")
            return None
        return cls(value, path, problems)

    def raw(self, key: str) -> Any:
        """The value as written; None when absent or null (the same thing to Kong)."""
        return self.data.get(key)

    def at(self, key: str) -> str:
        return join(self.path, key)

    def only(self, known: Collection[str]) -> None:
        """Report every key that is not a known field (a typo, or a field Kong does not have)."""
        for key in self.data:
            if key not in known:
                self.problems.error(self.at(str(key)), "unknown field")

    def record(self, key: str, *, required: bool = False) -> Record | None:
        value = self._present(key, required)
        return None if value is None else Record.read(value, self.at(key), self.problems)

    def string(
        self, key: str, *, required: bool = False, one_of: Collection[str] | None = None
    ) -> str | None:
        value = self._typed(key, "a string", required)
        if value is not None and one_of is not None and value not in one_of:
            self.problems.error(self.at(key), f"expected one of: {', '.join(one_of)}")
            return None
        return value

    def header_name(self, key: str) -> str | None:
        """A string that is sent (or looked up) as an HTTP header name: an RFC 9110 token."""
        value = self.string(key)
        if value is not None and not _TOKEN.fullmatch(value):
            self.problems.error(
                self.at(key),
                "must be an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only",
            )
            return None
        return value

    def without_controls(self, key: str, becomes: str) -> str | None:
        """A string that ends up in an HTTP message (``becomes`` says where): CR and LF would
        split it into forged headers, other control characters make the request invalid. The
        message never quotes the value, which may be a credential."""
        value = self.string(key)
        if value is not None and _CONTROL.search(value):
            self.problems.error(
                self.at(key),
                f"must not contain CR, LF or other control characters ({becomes}); "
                "the value is not shown",
            )
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._typed(key, "a boolean")
        return default if value is None else value

    def integer(
        self,
        key: str,
        default: int | None = None,
        *,
        between: tuple[int, int] | None = None,
        at_least: int | None = None,
    ) -> int | None:
        value = self._typed(key, "an integer")
        if value is None or not self._in_range(key, value, between=between, at_least=at_least):
            return default
        return int(value)

    def number(
        self,
        key: str,
        *,
        between: tuple[float, float] | None = None,
        greater_than: float | None = None,
    ) -> float | int | None:
        value = self._typed(key, "a number")
        if value is None or not self._in_range(
            key, value, between=between, greater_than=greater_than
        ):
            return None
        return value

    def strings(self, key: str, *, one_of: Collection[str] | None = None) -> list[str] | None:
        items = self._typed(key, "an array")
        if items is None:
            return None
        found = []
        for index, item in enumerate(items):
            where = join(self.at(key), index)
            if not isinstance(item, str):
                self.problems.error(where, "expected a string")
            elif one_of is not None and item not in one_of:
                self.problems.error(where, f"expected one of: {', '.join(one_of)}")
            else:
                found.append(item)
        return found

    def records(self, key: str) -> list[Record]:
        items = self._typed(key, "an array")
        read = (
            Record.read(item, join(self.at(key), index), self.problems)
            for index, item in enumerate(items or ())
        )
        return [record for record in read if record is not None]

    def warn_if_set(self, fields: Mapping[str, Any], why: str) -> None:
        """Warn about known Kong fields this proxy does not act on, when they carry a value.

        ``fields`` maps each name to Kong's default: a field left at its default changes nothing,
        so it stays quiet (a ``deck dump`` export lists every field).
        """
        for name, default in fields.items():
            value = self.raw(name)
            if is_unset(value) or _is_default(value, default):
                continue
            self.problems.warn(self.at(name), f"is set but {why}")

    def _present(self, key: str, required: bool) -> Any:
        value = self.raw(key)
        if is_unset(value) and required:
            self.problems.error(self.at(key), "required field missing")
        return value

    def _typed(self, key: str, expected: str, required: bool = False) -> Any:
        """The value when it is set and is ``expected``; None (reported) otherwise."""
        value = self._present(key, required)
        if value is None or _ACCEPTS[expected](value):
            return value
        self.problems.error(self.at(key), f"expected {expected}")
        return None

    def _in_range(
        self,
        key: str,
        value: float,
        *,
        between: tuple[float, float] | None = None,
        at_least: float | None = None,
        greater_than: float | None = None,
    ) -> bool:
        if between is not None and not between[0] <= value <= between[1]:
            low, high = (_show(bound) for bound in between)
            self.problems.error(self.at(key), f"value should be between {low} and {high}")
            return False
        if at_least is not None and value < at_least:
            self.problems.error(self.at(key), f"value must be greater than or equal to {at_least}")
            return False
        if greater_than is not None and value <= greater_than:
            self.problems.error(self.at(key), f"value must be greater than {_show(greater_than)}")
            return False
        return True


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 field values: HTAB is allowed


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, not to Kong
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _is_integral(value: Any) -> bool:
    """An integer, or a float with nothing after the point (YAML's ``1000.0``)."""
    return _is_number(value) and (isinstance(value, int) or value.is_integer())


# What each expected kind of value accepts, by the words Kong's messages use for it.
_ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "a string": lambda value: isinstance(value, str),
    "a boolean": lambda value: isinstance(value, bool),
    "an array": lambda value: isinstance(value, list),
    "a number": _is_number,
    "an integer": _is_integral,
}


def _is_default(value: Any, default: Any) -> bool:
    """A value equal to Kong's default; a nested record is at its default when every value in it
    is unset or at the default given for it (``default`` is then a mapping of defaults)."""
    if isinstance(value, Mapping) and isinstance(default, Mapping):
        return all(
            is_unset(item) or _is_default(item, default.get(key)) for key, item in value.items()
        )
    return value == default


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
