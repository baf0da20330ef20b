"""Cutting a live stream into the frames its protocol sends. Pure and incremental.

SSE (``text/event-stream``: TGI, llama.cpp, the OpenAI-style routes) sends events that end with
a blank line; NDJSON (``application/x-ndjson``: Ollama's native routes) sends one JSON document a
line. A frame keeps its delimiter, so the frames joined are the stream byte for byte.
"""

from __future__ import annotations

_SSE_ENDS = (b"\r\n\r\n", b"\n\n", b"\r\r")
_NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                           "application/x-jsonlines", "application/jsonlines"})


def stream_kind(content_type: str | None) -> str | None:
    """"sse", "ndjson", or None for a reply that is not a stream."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return "sse"
    if media in _NDJSON_TYPES:
        return "ndjson"
    return None


class FrameSplitter:
    """``feed`` bytes as they arrive and get the frames they complete; ``end`` the remainder."""

    def __init__(self, kind: str) -> None:
        if kind not in ("sse", "ndjson"):
            raise ValueError(f"no frames in a {kind!r} stream")
        self.kind = kind
        self._buffer = bytearray()
        self._scanned = 0  # bytes already known to hold no complete delimiter

    def _next_end(self) -> int:
        """The offset just past the first complete frame, or -1."""
        start = max(0, self._scanned - 3)  # a delimiter may straddle two feeds
        if self.kind == "ndjson":
            found = self._buffer.find(b"\n", start)
            return -1 if found < 0 else found + 1
        ends = [(at, len(mark)) for mark in _SSE_ENDS
                if (at := self._buffer.find(mark, start)) >= 0]
        if not ends:
            return -1
        at, size = min(ends)
        return at + size

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames = []
        while (end := self._next_end()) >= 0:
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
            self._scanned = 0
        self._scanned = len(self._buffer)
        return frames

    def end(self) -> list[bytes]:
        """What is left when the stream ends (a last frame without its delimiter), if any."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return [rest] if rest else []
