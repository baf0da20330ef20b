"""A mock's journal entry (what the upstream received) turned back into a request to send again.

The harness replays what a gateway sent upstream directly to the mock: to learn the upstream's
reply (and so what the client must get), and for the benchmark's direct call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

# Headers each hop sets for itself: never copied from one request to another.
HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
)


@dataclass(frozen=True)
class ReplayedRequest:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def replayed_request(entry: Mapping[str, Any], mock_url: str) -> ReplayedRequest:
    """The request of journal ``entry``, addressed to the mock at ``mock_url``.

    Repeated query parameters (journaled as a list) are sent repeated; the body goes as it came
    (JSON re-encoded compactly, text as UTF-8)."""
    query = urlencode(entry.get("query") or {}, doseq=True)
    headers = tuple(
        (name, value)
        for name, value in (entry.get("headers") or {}).items()
        if name.lower() not in HOP_HEADERS
    )
    body = entry.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    url = mock_url.rstrip("/") + entry["path"] + (f"?{query}" if query else "")
    return ReplayedRequest(entry["method"], url, headers, raw)
