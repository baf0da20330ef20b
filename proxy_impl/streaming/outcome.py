"""What a finished stream tells analytics: usage, finish reason, model and reply text.

``Tally`` watches the events go by in constant memory: it counts the length the reply text would
have once stripped (Kong's completion-token estimate is ``ceil(len(text.strip()) / 4)``) without
keeping the text, unless asked to keep it for payload logging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .events import Delta, Event, Failure, Finish, Relay, Usage


@dataclass(frozen=True)
class StreamOutcome:
    usage: Usage | None  # the upstream's own counts, when it gave them
    finish_reason: str | None
    model: str | None  # the model the upstream named, if any
    text_length: int  # length of the streamed reply text, stripped
    text: str | None = None  # the reply text, only when it was asked for
    failure: str | None = None  # how the stream broke off (a ``Failure`` kind), if it did

    @property
    def estimated_completion_tokens(self) -> int:
        """Kong's estimate for a provider that reported no completion tokens."""
        return math.ceil(self.text_length / 4)


class Tally:
    def __init__(self, *, keep_text: bool = False) -> None:
        self._keep_text = keep_text
        self._pieces: list[str] = []
        self._length = 0  # stripped length so far, not counting the trailing whitespace run
        self._trailing = 0  # whitespace at the end, counted only if more text follows
        self._nonblank = False
        self._usage: Usage | None = None
        self._reason: str | None = None
        self._model: str | None = None
        self._failure: str | None = None

    def observe(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Delta | Relay):
                self._count(event.text)
            if isinstance(event, Delta) and event.model:
                self._model = event.model
            elif isinstance(event, Finish):
                self._usage, self._reason = event.usage, event.reason
                self._model = event.model or self._model
            elif isinstance(event, Failure) and self._failure is None:
                self._failure = event.kind

    def outcome(self) -> StreamOutcome:
        return StreamOutcome(
            usage=self._usage,
            finish_reason=self._reason,
            model=self._model,
            text_length=self._length,
            text="".join(self._pieces).strip() if self._keep_text else None,
            failure=self._failure,
        )

    def _count(self, piece: str) -> None:
        if self._keep_text:
            self._pieces.append(piece)
        if not self._nonblank:
            piece = piece.lstrip()
            if not piece:
                return
            self._nonblank = True
        body = piece.rstrip()
        if body:
            self._length += self._trailing + len(body)
            self._trailing = len(piece) - len(body)
        else:
            self._trailing += len(piece)
