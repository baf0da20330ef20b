"""Typed reads from a decoded YAML/JSON document, with Kong's schema messages and field paths.

Every problem names the field it is about (``services[0].routes[1].plugins[0].config.auth``), so
a user can find it in a long file. Reads never raise: a bad value records an error and reads as
``None``, so one pass reports every problem at once.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
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
        value = self.raw(key)
        if is_unset(value):
            if required:
                self.problems.error(self.at(key), "required field missing")
            return None
        return Record.read(value, self.at(key), self.problems)

    def string(
        self, key: str, *, required: bool = False, one_of: Collection[str] | None = None
    ) -> str | None:
        value = self.raw(key)
        if is_unset(value):
            if required:
                self.problems.error(self.at(key), "required field missing")
            return None
        if not isinstance(value, str):
            self.problems.error(self.at(key), "expected a string")
            return None
        if one_of is not None and value not in one_of:
            self.problems.error(self.at(key), f"expected one of: {', '.join(one_of)}")
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if is_unset(value):
            return default
        if not isinstance(value, bool):
            self.problems.error(self.at(key), "expected a boolean")
            return default
        return value

    def integer(
        self,
        key: str,
        default: int | None = None,
        *,
        between: tuple[int, int] | None = None,
        at_least: int | None = None,
    ) -> int | None:
        value = self.raw(key)
        if is_unset(value):
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.error(self.at(key), "expected an integer")
            return default
        if isinstance(value, float):
            if not math.isfinite(value) or value != math.floor(value):
                self.problems.error(self.at(key), "expected an integer")
                return default
            value = int(value)
        if not self._in_range(key, value, between, at_least, None):
            return default
        return value

    def number(
        self,
        key: str,
        *,
        between: tuple[float, float] | None = None,
        greater_than: float | None = None,
    ) -> float | int | None:
        value = self.raw(key)
        if is_unset(value):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.error(self.at(key), "expected a number")
            return None
        if not math.isfinite(value):
            self.problems.error(self.at(key), "expected a number")
            return None
        if not self._in_range(key, value, between, None, greater_than):
            return None
        return value

    def strings(self, key: str, *, one_of: Collection[str] | None = None) -> list[str] | None:
        value = self.raw(key)
        if is_unset(value):
            return None
        if not isinstance(value, list):
            self.problems.error(self.at(key), "expected an array")
            return None
        items = []
        for index, item in enumerate(value):
            where = join(self.at(key), index)
            if not isinstance(item, str):
                self.problems.error(where, "expected a string")
            elif one_of is not None and item not in one_of:
                self.problems.error(where, f"expected one of: {', '.join(one_of)}")
            else:
                items.append(item)
        return items

    def records(self, key: str) -> list[Record]:
        value = self.raw(key)
        if is_unset(value):
            return []
        if not isinstance(value, list):
            self.problems.error(self.at(key), "expected an array")
            return []
        found = []
        for index, item in enumerate(value):
            record = Record.read(item, join(self.at(key), index), self.problems)
            if record is not None:
                found.append(record)
        return found

    def _in_range(
        self,
        key: str,
        value: float,
        between: tuple[float, float] | None,
        at_least: float | None,
        greater_than: float | None,
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
