"""How a mock records or replays cassettes: the options, checked, and what they build.

``CassetteOptions.from_settings`` takes the keyword arguments that ``run_mock``, the pytest
marker and the ``proxyproof mock`` command share (``record_from`` + ``cassettes`` to record,
``replay`` to replay, ``strict``, ``replay_timing``, ``ignore_fields``, ``redact_headers``,
``redact_query``, ``redact_fields``) and says in one line what does not fit. Messages name the
command's flags: they are what a user types.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import field_path
from .base import MockKind

KEYWORDS = ("record_from", "cassettes", "replay", "strict", "replay_timing", "ignore_fields",
            "redact_headers", "redact_query", "redact_fields")


class CassetteOptionError(ValueError):
    """Options that do not fit together, said in one line."""


def public_url(url: str) -> str:
    """``url`` without credentials or query: what may be printed or written to a file."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        raise CassetteOptionError(f"--record-from {public_url(url)!r}: bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CassetteOptionError(
            f"--record-from needs an http:// or https:// URL of the real server, e.g. "
            f"http://gpu-box:11434 (got {public_url(url) or url!r:.60})")


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not all(isinstance(item, str) for item in value):
        raise CassetteOptionError(f"{name} must be a list of names")
    return tuple(value)


@dataclass(frozen=True)
class CassetteOptions:
    directory: Path
    record_from: str | None = None  # set: record from this server; None: replay
    strict: bool = False
    replay_timing: bool = False
    ignore_fields: tuple[str, ...] = ()
    redact_headers: tuple[str, ...] = ()
    redact_query: tuple[str, ...] = ()
    redact_fields: tuple[str, ...] = ()

    @property
    def recording(self) -> bool:
        return self.record_from is not None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> CassetteOptions | None:
        """Take the cassette keywords out of ``settings``; None when there are none."""
        given = {key: settings.pop(key) for key in KEYWORDS if key in settings}
        given = {key: value for key, value in given.items()
                 if value not in (None, False, (), [])}
        if not given:
            return None
        record_from, cassettes, replay = (given.get(k) for k in ("record_from", "cassettes",
                                                                 "replay"))
        if record_from is not None and replay is not None:
            raise CassetteOptionError("--replay and --record-from do not go together: record "
                                      "first, then replay the directory")
        if record_from is not None and cassettes is None:
            raise CassetteOptionError("--record-from needs --cassettes DIR: where to write "
                                      "the recorded exchanges")
        if cassettes is not None and record_from is None:
            raise CassetteOptionError("--cassettes DIR is where --record-from writes; to serve "
                                      "recorded exchanges use --replay DIR")
        if record_from is None and replay is None:
            named = ", ".join("--" + key.replace("_", "-").removesuffix("s") for key in given)
            if set(given) <= {"strict", "replay_timing"}:
                needed = "--replay DIR"
            elif all(key.startswith("redact_") for key in given):
                needed = "--record-from URL"
            else:
                needed = "--replay DIR or --record-from URL"
            raise CassetteOptionError(f"{named}: only with {needed}")
        options = cls(
            directory=Path(cassettes if cassettes is not None else replay),
            record_from=None if record_from is None else str(record_from),
            strict=bool(given.get("strict")),
            replay_timing=bool(given.get("replay_timing")),
            ignore_fields=_strings("--ignore-field", given.get("ignore_fields")),
            redact_headers=_strings("--redact-header", given.get("redact_headers")),
            redact_query=_strings("--redact-query", given.get("redact_query")),
            redact_fields=_strings("--redact-field", given.get("redact_fields")),
        )
        options.check()
        return options

    def check(self) -> None:
        """``CassetteOptionError`` for options that cannot work, before anything listens."""
        if self.recording:
            assert self.record_from is not None
            _check_url(self.record_from)
            for flag in ("strict", "replay_timing"):
                if getattr(self, flag):
                    raise CassetteOptionError(f"--{flag.replace('_', '-')} is for --replay, "
                                              "not for recording")
            try:  # made now: a directory that cannot be is said before anything listens
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as problem:
                raise CassetteOptionError(f"--cassettes {self.directory}: "
                                          f"{problem.strerror or problem}") from None
        else:
            for flag in ("redact_headers", "redact_query", "redact_fields"):
                if getattr(self, flag):
                    name = "--" + flag.replace("_", "-").removesuffix("s")
                    raise CassetteOptionError(f"{name} is for recording (--record-from): "
                                              "replay never sees the secrets")
            if not self.directory.is_dir():
                raise CassetteOptionError(f"--replay {self.directory}: no such directory")
            from .cassette import CassetteError
            from .replayer import read_directory

            try:
                read_directory(self.directory)  # a bad cassette: said now, not at a request
            except CassetteError as problem:
                raise CassetteOptionError(str(problem)) from None
        for text in (*self.ignore_fields, *self.redact_fields):
            try:
                field_path.parse(text)
            except ValueError as problem:
                raise CassetteOptionError(str(problem)) from None

    def describe(self) -> str:
        """One line for the console: what this mock records or replays."""
        if self.recording:
            assert self.record_from is not None
            return (f"recording exchanges with {public_url(self.record_from)} into "
                    f"{self.directory}/")
        mode = "strict" if self.strict else "unmatched requests get generated replies"
        timing = ", recorded pacing" if self.replay_timing else ""
        return f"replaying cassettes from {self.directory}/ ({mode}{timing})"

    def source(self, kind: MockKind, log: Callable[[str], None] | None) -> Any:
        """The ``Recorder`` or ``Replayer`` these options describe (``pipeline.Source``)."""
        ignored = tuple(field_path.parse(text) for text in self.ignore_fields)
        if self.recording:
            from .recorder import Recorder
            from .redaction import Redaction

            assert self.record_from is not None
            redaction = Redaction.adding(self.redact_headers, self.redact_query,
                                         self.redact_fields)
            return Recorder(kind, self.record_from, self.directory, redaction, ignored, log)
        from .replayer import Replayer, read_directory

        return Replayer(read_directory(self.directory), ignored=ignored, strict=self.strict,
                        timing=self.replay_timing)
