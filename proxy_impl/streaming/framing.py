"""Incremental decoders for the two framings upstreams stream in: SSE and NDJSON.

Both take bytes in whatever pieces the network delivers and return only complete frames, so a
frame cut across reads, several frames in one read, CRLF or CR line ends and a last line with no
newline all decode the same. Text is decoded per complete line, never per read, so a UTF-8
character cut across two reads survives. A line longer than ``MAX_LINE_BYTES`` raises
``FramingError``: memory stays bounded whatever the upstream sends.
"""

from __future__ import annotations

import re

MAX_LINE_BYTES = 1 << 20

_LINE_END = re.compile(rb"\r\n|\r|\n")


class FramingError(ValueError):
    pass


class LineSplitter:
    """Bytes in, complete lines out, without their end: ``\\n``, ``\\r\\n`` or ``\\r``."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._partial = bytearray()
        self._after_cr = False  # the last read ended with "\r": a leading "\n" next belongs to it
        self._max = max_line_bytes
        self._first = True

    def feed(self, data: bytes) -> list[str]:
        if not data:
            return []
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = False
        # LF line ends only, as every upstream here writes them: bytes.split, several times
        # faster than the regular expression
        lines = self._split(data) if b"\r" in data else self._split_lf(data)
        if len(self._partial) > self._max:
            raise FramingError(f"upstream stream line longer than {self._max} bytes")
        return lines

    def _split(self, data: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        for end in _LINE_END.finditer(data):
            self._partial += data[start : end.start()]
            lines.append(self._take())
            start = end.end()
            self._after_cr = end.group() == b"\r" and start == len(data)
        self._partial += data[start:]
        return lines

    def _split_lf(self, data: bytes) -> list[str]:
        *complete, rest = data.split(b"\n")
        if complete and self._partial:
            complete[0] = bytes(self._partial) + complete[0]
            self._partial.clear()
        lines = [line.decode("utf-8", errors="replace") for line in complete]
        if lines:
            lines[0] = self._unmarked(lines[0])
        self._partial += rest
        return lines

    def finish(self) -> list[str]:
        """The last line when the stream ended without a line end."""
        return [self._take()] if self._partial else []

    def _take(self) -> str:
        line = self._partial.decode("utf-8", errors="replace")
        self._partial.clear()
        return self._unmarked(line)

    def _unmarked(self, line: str) -> str:
        """``line`` without the byte-order mark that may open a text stream (the first only)."""
        if self._first:
            self._first = False
            return line.removeprefix("\ufeff")
        return line


class NdjsonDecoder:
    """Newline-delimited JSON: each non-blank line is one JSON text (returned undecoded)."""

    frame_end = b"\n"

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._lines = LineSplitter(max_line_bytes)

    def feed(self, data: bytes) -> list[str]:
        return [line for line in self._lines.feed(data) if line.strip()]

    def finish(self) -> list[str]:
        return [line for line in self._lines.finish() if line.strip()]


class SseDecoder:
    """Server-sent events as the WHATWG rules read them; each event is returned as its data.

    A blank line dispatches the pending event; ``:`` lines are comments (keep-alives); a field's
    value loses one leading space; several ``data:`` lines join with ``\\n``; an event without any
    ``data:`` line is not dispatched. Other fields (``event:``, ``id:``, ``retry:``) are read past:
    no upstream dialect here needs them. Unlike a browser, ``finish()`` also dispatches a last event
    whose blank line never came: an upstream that closes right after its final event still
    delivered it.
    """

    frame_end = b"\n\n"  # a blank line dispatches an event

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._lines = LineSplitter(max_line_bytes)
        self._max = max_line_bytes
        self._data: list[str] = []
        self._size = 0  # characters held in self._data: one event may not grow without bound

    def feed(self, data: bytes) -> list[str]:
        return self._read(self._lines.feed(data))

    def finish(self) -> list[str]:
        return self._read([*self._lines.finish(), ""])

    def _read(self, lines: list[str]) -> list[str]:
        events: list[str] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                self._data, self._size = [], 0
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
                self._size += len(value) + 1
                if self._size > self._max:
                    raise FramingError(f"upstream stream event longer than {self._max} bytes")
        return events
