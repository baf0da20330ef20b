"""The skeleton every stream translator shares: bytes in, events out, nothing after the end.

A translator is a pure state machine: ``feed(data)`` takes the next read of the upstream body and
returns the events it completes; ``finish()`` says the upstream body ended and returns what that
completes (a last unterminated frame, or a ``Failure`` when the stream stopped early). After a
``Finish`` or a ``Failure`` it ignores further input, so the client never sees events after the
end of the stream.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

from .events import Event, Failure, is_terminal
from .framing import FramingError

Frame = TypeVar("Frame")


class Translator(Protocol):
    def feed(self, data: bytes) -> list[Event]: ...

    def finish(self) -> list[Event]: ...


class FrameDecoder(Protocol[Frame]):
    def feed(self, data: bytes) -> list[Frame]: ...

    def finish(self) -> list[Frame]: ...


class FrameTranslator(ABC, Generic[Frame]):
    """A translator made of a frame decoder and a rule per frame."""

    def __init__(self, decoder: FrameDecoder[Frame]) -> None:
        self._decoder = decoder
        self.ended = False

    def feed(self, data: bytes) -> list[Event]:
        if self.ended:
            return []
        try:
            frames = self._decoder.feed(data)
        except FramingError as error:
            return self._stop(Failure("malformed", str(error)))
        return self._translate(frames)

    def finish(self) -> list[Event]:
        if self.ended:
            return []
        try:
            frames = self._decoder.finish()
        except FramingError as error:
            return self._stop(Failure("malformed", str(error)))
        events = self._translate(frames)
        if events and isinstance(events[-1], Failure) and events[-1].kind == "malformed":
            # the last frame was cut short: the stream was truncated, not garbled
            return [*events[:-1], truncated("in the middle of a frame")]
        if not self.ended:
            self.ended = True
            events += self.on_end()
        return events

    @abstractmethod
    def on_frame(self, frame: Frame) -> list[Event]:
        """The events of one complete frame."""

    @abstractmethod
    def on_end(self) -> list[Event]:
        """The events owed when the upstream body ends before a terminal event."""

    def _translate(self, frames: list[Frame]) -> list[Event]:
        events: list[Event] = []
        for frame in frames:
            events += self.on_frame(frame)
            if events and is_terminal(events[-1]):
                self.ended = True
                break
        return events

    def _stop(self, failure: Failure) -> list[Event]:
        self.ended = True
        return [failure]


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` decoded when it is a JSON object, else None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def upstream_failure(error: object, error_type: object = None) -> Failure:
    """The ``Failure`` for an upstream's in-stream error, whatever its dialect.

    Ollama sends ``{"error": "text"}``, TGI ``{"error": "text", "error_type": "..."}``, llama.cpp
    and OpenAI-style servers ``{"error": {"message": ..., ...}}``.
    """
    if isinstance(error, Mapping):
        message = error.get("message")
        text = message if isinstance(message, str) else json.dumps(error, ensure_ascii=False)
        return Failure("upstream_error", text, error)
    text = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
    if isinstance(error_type, str):
        return Failure("upstream_error", text, {"message": text, "type": error_type})
    return Failure("upstream_error", text)


def malformed(what: str) -> Failure:
    return Failure("malformed", f"upstream sent {what}")


def truncated(where: str) -> Failure:
    return Failure("truncated", f"upstream stream ended {where}")
