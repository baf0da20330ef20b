"""Control-API scripts kept as files (``proxyproof mock KIND --scripts DIR``).

Every ``*.yaml``, ``*.yml`` and ``*.json`` file in DIR, in name order, holds one script — the
same object ``POST /__mock__/scripts`` takes — or a list of them. The mock starts with them
added in that order, and ``POST /__mock__/reset`` brings them back (with their ``times`` full).
A file that does not parse or holds an invalid script stops the start with one line naming the
file and the problem (``StubFileError``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .scripts import parse_script

SUFFIXES = (".yaml", ".yml", ".json")


class StubFileError(ValueError):
    """A scripts file that cannot be loaded: ``<file>: <problem>``."""


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise StubFileError(f"{path}: cannot be read ({problem})") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as problem:
        raise StubFileError(f"{path}: not valid JSON (line {problem.lineno}, column "
                            f"{problem.colno}: {problem.msg})") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(problem, "problem", None) or "unreadable"
        raise StubFileError(f"{path}: not valid YAML ({where}{reason})") from None


def load_file(path: Path) -> list[dict[str, Any]]:
    """The scripts one file holds, each checked as ``POST /__mock__/scripts`` checks it."""
    document = _parse(path)
    if document is None:
        return []  # an empty file: no scripts
    specs = document if isinstance(document, list) else [document]
    for index, spec in enumerate(specs, start=1):
        which = f"script {index}: " if isinstance(document, list) else ""
        try:
            parse_script(0, spec)
        except ValueError as problem:
            raise StubFileError(f"{path}: {which}{problem}") from None
    return specs


def load_scripts(where: Path) -> list[dict[str, Any]]:
    """The scripts of every file in directory ``where`` (or of the one file ``where``)."""
    if where.is_file():
        return load_file(where)
    if not where.is_dir():
        raise StubFileError(f"{where}: no such directory")
    paths = sorted(p for p in where.iterdir()
                   if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith("."))
    return [spec for path in paths for spec in load_file(path)]
