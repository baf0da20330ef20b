"""The skeleton every stream translator shares: bytes in, events out, nothing after the end.

A translator is a pure state machine: ``feed(data)`` takes the next read of the upstream body and
returns the events it completes; ``finish()`` says the upstream body ended and returns what that
completes (a last unterminated frame, or a ``Failure`` when the stream stopped early). After a
``Finish`` or a ``Failure`` it ignores further input, so the client never sees events after the
end of the stream.

``lead(data)`` is ``feed`` for the relay, which sends the stream's first token before decoding
what arrived with it: until the first event that carries content, it feeds the read to the decoder
a frame at a time, stops right after that event and holds the rest of the read (``holding``) for the
next ``feed`` or ``finish``. A fast upstream's whole reply can come in one read, and decoding it all
first would delay the first token by the whole reply's framing and translation, longer the longer
the reply.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

from .events import Delta, Event, Failure, Relay, is_terminal
from .framing import FramingError

Frame = TypeVar("Frame")


class Translator(Protocol):
    holding: bool

    def feed(self, data: bytes) -> list[Event]: ...

    def lead(self, data: bytes) -> list[Event]: ...

    def finish(self) -> list[Event]: ...


class FrameDecoder(Protocol[Frame]):
    frame_end: bytes  # what ends a frame when lines end with LF

    def feed(self, data: bytes) -> list[Frame]: ...

    def finish(self) -> list[Frame]: ...


class FrameTranslator(ABC, Generic[Frame]):
    """A translator made of a frame decoder and a rule per frame."""

    def __init__(self, decoder: FrameDecoder[Frame]) -> None:
        self._decoder = decoder
        self.ended = False
        self._led = False  # the first content event has been returned
        self._held: list[Frame] = []  # frames decoded by lead() and not translated yet
        self._unfed = b""  # the rest of the read lead() stopped in, not decoded yet

    @property
    def holding(self) -> bool:
        return bool(self._held or self._unfed)

    def feed(self, data: bytes) -> list[Event]:
        return self._feed(data, lead=False)

    def lead(self, data: bytes) -> list[Event]:
        if self._led or b"\r" in data:
            # After the first token, or with CR line ends (which no upstream here writes): the
            # whole read, the frames after the first token held (``_translate``).
            return self._feed(data, lead=not self._led)
        events: list[Event] = []
        start = 0
        step = self._decoder.frame_end
        while start < len(data) and not (self._led or self.ended):
            end = data.find(step, start)
            end = len(data) if end < 0 else end + len(step)
            events += self._feed(data[start:end], lead=True)
            start = end
        if not self.ended:
            self._unfed = data[start:]
        return events

    def finish(self) -> list[Event]:
        events = self.feed(b"") if self._unfed else []
        if self.ended:
            return events
        try:
            frames = self._take(self._decoder.finish())
        except FramingError as error:
            return events + self._stop(Failure("malformed", str(error)))
        events += self._translate(frames)
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

    def _feed(self, data: bytes, *, lead: bool) -> list[Event]:
        if self.ended:
            return []
        if self._unfed:
            data, self._unfed = self._unfed + data, b""
        try:
            frames = self._take(self._decoder.feed(data))
        except FramingError as error:
            return self._stop(Failure("malformed", str(error)))
        return self._translate(frames, lead=lead)

    def _take(self, frames: list[Frame]) -> list[Frame]:
        """``frames`` after those held back by ``lead``."""
        if not self._held:
            return frames
        held, self._held = self._held, []
        return held + frames

    def _translate(self, frames: list[Frame], *, lead: bool = False) -> list[Event]:
        events: list[Event] = []
        for index, frame in enumerate(frames):
            found = self.on_frame(frame)
            events += found
            if events and is_terminal(events[-1]):
                self.ended = True
                break
            if lead and any(map(_carries_content, found)):
                self._led = True
                self._held = frames[index + 1 :]
                break
        return events

    def _stop(self, failure: Failure) -> list[Event]:
        self.ended = True
        return [failure]


def _carries_content(event: Event) -> bool:
    if isinstance(event, Delta):
        return bool(event.text or event.tool_calls)
    return isinstance(event, Relay) and bool(event.text)


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` decoded when it is a JSON object, else None. (The translators test what JSON
    decoded with ``isinstance(value, dict)``: against ``Mapping`` the test costs ten times as
    much, several times per frame.)"""
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
