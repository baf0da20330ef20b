"""What never reaches a cassette file: credentials in headers, the query string and the body.

Pure. A redacted value is written as ``***``; replay does not compare headers or the query, and a
body field recorded as ``***`` matches any value (``cassette_match``), so replaying needs none of
the secrets. Headers that only describe one connection (``Host``, ``Content-Length``,
``Connection``, ...) are not recorded at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import field_path

MASK = "***"

# Credentials by name, whatever the server: sent by clients (Authorization, llama.cpp's X-Api-Key,
# Azure-style api-key) or set by the server (cookies).
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie",
})
# Query parameters that carry keys in the wild (?key= for Google-style APIs, ?api_key=, ?token=).
SECRET_QUERY = frozenset({
    "key", "api_key", "api-key", "apikey", "access_token", "token", "auth", "password",
    "secret", "signature", "sig",
})
# Per-connection headers: meaningless in a replay, and noise in a diff.
UNRECORDED_HEADERS = frozenset({
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "trailer",
    "upgrade", "proxy-connection", "accept-encoding", "content-encoding", "date",
})


@dataclass(frozen=True)
class Redaction:
    headers: frozenset[str] = SECRET_HEADERS  # lower-case names
    query: frozenset[str] = SECRET_QUERY  # lower-case names
    fields: tuple[tuple[str, ...], ...] = ()  # body field paths (``field_path``)

    @classmethod
    def adding(cls, headers: Iterable[str] = (), query: Iterable[str] = (),
               fields: Iterable[str] = ()) -> Redaction:
        """The default redaction plus the user's names; ``ValueError`` for a bad field path."""
        return cls(
            headers=SECRET_HEADERS | {name.strip().lower() for name in headers},
            query=SECRET_QUERY | {name.strip().lower() for name in query},
            fields=tuple(field_path.parse(text) for text in fields),
        )

    def header_map(self, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """Headers as recorded: per-connection ones dropped, secrets masked, repeats listed."""
        return _collect(
            (name, MASK if name.lower() in self.headers else value)
            for name, value in items if name.lower() not in UNRECORDED_HEADERS
        )

    def query_map(self, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
        return _collect((name, MASK if name.lower() in self.query else value)
                        for name, value in items)

    def body(self, value: Any) -> Any:
        return field_path.masked(value, self.fields, MASK)


def _collect(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    collected: dict[str, Any] = {}
    for raw_name, raw_value in items:
        name, value = str(raw_name), str(raw_value)  # plain str: aiohttp's istr is not YAML
        if name not in collected:
            collected[name] = value
        elif isinstance(collected[name], list):
            collected[name].append(value)
        else:
            collected[name] = [collected[name], value]
    return collected
