"""What the client receives: stream events encoded as ``text/event-stream`` bytes.

Fixed mode speaks OpenAI's streaming dialect for the route type:

- chat: a first chunk with ``delta: {"role": "assistant", "content": ""}``, a chunk per delta, a
  finish chunk with an empty delta and ``finish_reason``;
- completions: ``text_completion`` chunks with ``text``, then a finish chunk with ``text: ""``;
- with ``stream_options.include_usage``: ``"usage": null`` on every chunk and a ``choices: []``
  chunk with the usage before the end, as OpenAI does;
- every event ``data: <json>\\n\\n``, the end ``data: [DONE]\\n\\n``; a ``Failure`` is
  ``data: {"error": {...}}\\n\\n`` followed by ``data: [DONE]\\n\\n``.

Relayed payloads (openai format) are written unchanged, and then only ``[DONE]`` is added.

Kong-compatibility mode writes Kong's chunk shapes (no id, role or finish chunk) in Kong's cjson
text (``kong_json``: ``/`` as ``\\/``), ends with
``data: [DONE]`` with no line end at all, and has no error event: Kong ends the stream silently
(docs/kong-behaviour.md#streaming).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import kong_json
from ..json_text import compact_json
from ..model import CHAT, ReplyStamp
from .events import Delta, Event, Failure, Finish, Relay

DONE = b"data: [DONE]\n\n"
KONG_DONE = b"data: [DONE]"
# Kong's only mid-stream signal: a frame it cannot translate (sent without any line end).
KONG_UNSUPPORTED = b'data: {"error": true, "message": "empty or unsupported transformer response"}'

# The error "type" a client sees for each failure the proxy detects itself.
_ERROR_TYPES = {
    "upstream_error": "upstream_error",
    "malformed": "upstream_bad_stream",
    "truncated": "upstream_incomplete_stream",
    "connection": "upstream_connection_error",
}


# Stands for a text chunk's text while its frame is encoded (never sent).
_SLOT = "\x00proxyproof text slot\x00"
_SLOT_JSON = compact_json(_SLOT).encode()


def sse(payload: Mapping[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else compact_json(payload)
    return f"data: {text}\n\n".encode()


def error_event(failure: Failure) -> dict[str, Any]:
    """``{"error": {...}}`` for a failure: the upstream's own error object when it sent one."""
    if failure.error is not None:
        error = dict(failure.error)
        if not isinstance(error.get("message"), str):
            error["message"] = failure.message
        return {"error": error}
    return {"error": {"message": failure.message, "type": _ERROR_TYPES[failure.kind]}}


class ClientStream:
    """Encodes one client stream. Pure: its ``id`` and ``created`` come in as ``stamp``."""

    def __init__(
        self,
        *,
        route_type: str,
        model: str,
        stamp: ReplyStamp,
        include_usage: bool = False,
        kong_compat: bool = False,
    ) -> None:
        self._chat = route_type == CHAT
        self._model = model
        self._stamp = stamp
        self._include_usage = include_usage
        self._compat = kong_compat
        self._started = False  # the first chunk (model fixed, role sent) is out
        self._relaying = False  # the upstream's own chunks are being relayed
        # A text chunk's bytes before and after its text, for the model they were made with.
        self._template: tuple[bytes, bytes] | None = None
        self._template_model: str | None = None
        self.ended = False

    def encode(self, events: Iterable[Event]) -> bytes:
        out = bytearray()
        for event in events:
            if not self.ended:
                out += self._encode_one(event)
        return bytes(out)

    def _encode_one(self, event: Event) -> bytes:
        if isinstance(event, Relay):
            self._relaying = True
            return sse(event.data)
        if self._compat:
            return self._kong(event)
        if isinstance(event, Failure):
            self.ended = True
            return sse(error_event(event)) + DONE
        out = self._start(event.model)
        if isinstance(event, Delta):
            return out + self._delta(event)
        self.ended = True
        if self._relaying:
            return out + DONE
        out += sse(self._chunk(self._empty_piece(), event.reason))
        if self._include_usage and event.usage is not None:
            out += sse(self._frame([], usage=event.usage.as_json()))
        return out + DONE

    def _start(self, upstream_model: str | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._model = upstream_model or self._model
        if not self._chat or self._relaying:
            return b""
        return sse(self._chunk({"role": "assistant", "content": ""}))

    def _delta(self, delta: Delta) -> bytes:
        if delta.text and not delta.tool_calls:  # nearly every chunk: text only
            return self._text_chunk(delta.text)
        if not self._chat:
            return sse(self._chunk(delta.text)) if delta.text else b""
        piece: dict[str, Any] = {}
        if delta.text:
            piece["content"] = delta.text
        if delta.tool_calls:
            piece["tool_calls"] = [dict(call) for call in delta.tool_calls]
        return sse(self._chunk(piece)) if piece else b""

    def _text_chunk(self, text: str) -> bytes:
        """``sse(self._chunk(piece))`` for a text-only piece, from the frame's text encoded once
        per stream around a slot for the text: the same bytes without encoding the frame anew
        for every chunk (about 6 us each)."""
        if self._template_model is not self._model:  # the model is fixed by the first chunk
            self._template_model = self._model
            piece: dict[str, Any] | str = {"content": _SLOT} if self._chat else _SLOT
            parts = sse(self._chunk(piece)).split(_SLOT_JSON)
            # A slot that the frame's own values also hold (never in practice): no template.
            self._template = (parts[0], parts[1]) if len(parts) == 2 else None
        if self._template is None:
            return sse(self._chunk({"content": text} if self._chat else text))
        head, tail = self._template
        return head + compact_json(text).encode() + tail

    def _empty_piece(self) -> dict[str, Any] | str:
        return {} if self._chat else ""

    def _chunk(self, piece: dict[str, Any] | str, finish_reason: str | None = None) -> dict:
        field = "delta" if self._chat else "text"
        choice = {"index": 0, field: piece, "logprobs": None, "finish_reason": finish_reason}
        return self._frame([choice])

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "id": self._stamp.id,
            "object": "chat.completion.chunk" if self._chat else "text_completion",
            "created": self._stamp.created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            frame["usage"] = None
        frame.update(extra)
        return frame

    def _kong(self, event: Event) -> bytes:
        if isinstance(event, Failure):
            self.ended = True
            return b""
        if isinstance(event, Finish):
            self.ended = True
            return KONG_DONE
        if self._chat:
            frame: dict[str, Any] = {"choices": [{"delta": {"content": event.text}, "index": 0}]}
            obj = "chat.completion.chunk"
        else:
            frame, obj = {"choices": [{"text": event.text, "index": 0}]}, "text_completion"
        if event.model is not None:
            frame["model"] = event.model
        frame["object"] = obj
        return b"data: " + kong_json.encode(frame) + b"\n\n"
