"""Spotting the first token in a stream as its bytes arrive (pure: bytes in, a yes/no out).

"First token" means the first frame that carries generated text, not the first byte: an
OpenAI-style stream (the proxy's included) opens with a role-only delta whose content is "".
The framing follows the response's content type: NDJSON (Ollama) is one JSON value per line,
anything else is read as server-sent events (``data: <json>`` blocks ended by a blank line).
"""

from __future__ import annotations

import json
from typing import Any


def wire_format_of(content_type: str) -> str:
    return "ndjson" if "ndjson" in content_type.lower() else "sse"


def carries_text(value: Any) -> bool:
    """Whether one decoded frame holds generated text, in any of the upstream or client shapes:
    OpenAI chunks (``choices[].delta.content`` / ``choices[].text``), Ollama (``message.content``
    / ``response``), TGI (``token.text``) and llama.cpp (``content``)."""
    if not isinstance(value, dict):
        return False
    for choice in value.get("choices") or ():
        if isinstance(choice, dict):
            delta = choice.get("delta")
            if isinstance(delta, dict) and _text(delta.get("content")):
                return True
            if _text(choice.get("text")):
                return True
    message, token = value.get("message"), value.get("token")
    return (
        (isinstance(message, dict) and _text(message.get("content")))
        or (isinstance(token, dict) and _text(token.get("text")))
        or _text(value.get("response"))
        or _text(value.get("content"))
    )


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


class FirstTextScanner:
    """Feed body pieces in arrival order; ``feed`` answers True once a frame with text is complete,
    ``text_frames`` how many frames with text a piece completed (for the time between chunks).

    Only the unfinished tail of the body is kept, so a long stream costs no more than its frames.
    """

    def __init__(self, content_type: str) -> None:
        self._separator = _separator(content_type)
        self._pending = b""
        self.found = False

    def feed(self, data: bytes) -> bool:
        if self.found:
            return True
        self.text_frames(data)
        return self.found

    def text_frames(self, data: bytes) -> int:
        self._pending = (self._pending + data).replace(b"\r\n", b"\n")
        *complete, self._pending = self._pending.split(self._separator)
        found = sum(1 for frame in complete if carries_text(_decode(frame, self._separator)))
        self.found = self.found or found > 0
        return found


def first_text_end(body: bytes, content_type: str) -> int | None:
    """Where the first frame with text ends in a whole stream ``body`` (LF line ends, as the
    mocks write them): the length of the part up to and including it; None when none has text."""
    separator = _separator(content_type)
    start = 0
    while (end := body.find(separator, start)) >= 0:
        if carries_text(_decode(body[start:end], separator)):
            return end + len(separator)
        start = end + len(separator)
    return None


def _separator(content_type: str) -> bytes:
    """What ends a frame: a line in NDJSON, a blank line in SSE."""
    return b"\n" if wire_format_of(content_type) == "ndjson" else b"\n\n"


def _decode(frame: bytes, separator: bytes) -> Any:
    if separator == b"\n":
        payload = frame
    else:  # SSE: the data lines of the event, joined
        payload = b"\n".join(
            line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")
        )
    try:
        return json.loads(payload)
    except ValueError:  # "[DONE]", comments, keep-alives
        return None
