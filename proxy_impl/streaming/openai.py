"""The openai format's stream: OpenAI-style SSE, relayed to the client unchanged.

Each ``data:`` payload becomes a ``Relay`` carrying it byte for byte; the payloads are still
parsed, only to learn the finish reason, usage and model for analytics. ``data: [DONE]`` ends the
stream with a ``Finish``. In fixed mode an ``{"error": ...}`` event, a payload that is not JSON,
or an end without ``[DONE]`` is a ``Failure`` (the client gets an error event, then ``[DONE]``).
Kong-compatibility mode relays such payloads as they are and reports nothing at an early end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .events import Event, Finish, Relay, Usage, usage_from
from .framing import SseDecoder
from .translator import FrameTranslator, json_object, malformed, truncated, upstream_failure


class OpenAITranslator(FrameTranslator[str]):
    def __init__(self, *, kong_compat: bool = False) -> None:
        super().__init__(SseDecoder())
        self._compat = kong_compat
        self._reason: str | None = None
        self._usage: Usage | None = None
        self._model: str | None = None

    def on_frame(self, frame: str) -> list[Event]:
        if frame == "[DONE]":
            return [Finish(self._reason, self._usage, self._model)]
        chunk = json_object(frame)
        if not self._compat:
            if chunk is None:
                return [malformed("an event that is not a JSON object")]
            if chunk.get("error"):
                return [upstream_failure(chunk["error"])]
        return [Relay(frame, self._observe(chunk or {}))]

    def on_end(self) -> list[Event]:
        return [] if self._compat else [truncated("without data: [DONE]")]

    def _observe(self, chunk: Mapping[str, Any]) -> str:
        """Note the chunk's finish reason, usage and model; return the text it adds."""
        if isinstance(chunk.get("model"), str):
            self._model = chunk["model"]
        self._usage = usage_from(chunk.get("usage")) or self._usage
        choices = chunk.get("choices")
        text = ""
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict):
                continue
            if isinstance(choice.get("finish_reason"), str):
                self._reason = choice["finish_reason"]
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if isinstance(piece, str):
                text += piece
        return text
