"""The raw format's streams: TGI / HF Inference API events and llama.cpp ``/completion`` events.

Both are SSE without a ``[DONE]``; the upstream just closes after its last event. They are told
apart by shape:

- TGI: ``{"index", "token": {"text", "special"}, "generated_text": null, "details": null}`` per
  token; the last event carries the full ``generated_text`` and, when details were asked for,
  ``details: {finish_reason, generated_tokens, input_length}``. Special tokens (``</s>``) are not
  reply text. An error is ``{"error": "...", "error_type": "..."}``.
- llama.cpp: ``{"content": "<piece>", "stop": false}`` per token; the last event has
  ``stop: true``, ``stop_type`` and the counts ``tokens_evaluated`` / ``tokens_predicted``. An
  error is ``{"error": {"code", "message", "type"}}``.

The non-streamed raw reply is trimmed (``text.strip()`` after the last ``[/INST]``), so the
streamed text is trimmed the same way: leading whitespace is dropped and trailing whitespace is
held back until more text follows it. The deltas then concatenate to the non-streamed reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..codecs.raw import LUA_SPACE
from .events import Delta, Event, Finish, Usage, as_count
from .framing import SseDecoder
from .translator import FrameTranslator, json_object, malformed, truncated, upstream_failure

_TGI_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


class RawTranslator(FrameTranslator[str]):
    def __init__(self) -> None:
        super().__init__(SseDecoder())
        self._trim = TrimmedText()

    def on_frame(self, frame: str) -> list[Event]:
        if frame.strip() == "[DONE]":  # not sent by these servers, but unambiguous
            return [Finish("stop")]
        event = json_object(frame)
        if event is None:
            return [malformed("an event that is not a JSON object")]
        if event.get("error") is not None:
            return [upstream_failure(event["error"], event.get("error_type"))]
        if isinstance(event.get("token"), dict):
            return self._tgi(event)
        if "content" in event or "stop" in event:
            return self._llamacpp(event)
        return [malformed("an event that is neither a TGI nor a llama.cpp stream event")]

    def on_end(self) -> list[Event]:
        return [truncated("before its final event")]

    def _tgi(self, event: Mapping[str, Any]) -> list[Event]:
        token = event["token"]
        text = token.get("text") if not token.get("special") else ""
        events = self._delta(text if isinstance(text, str) else "")
        details = event.get("details")
        if event.get("generated_text") is not None or isinstance(details, dict):
            if isinstance(details, dict):
                reason = _TGI_FINISH.get(str(details.get("finish_reason")), "stop")
                usage = Usage(
                    as_count(details.get("input_length")), as_count(details.get("generated_tokens"))
                )
            else:  # no details asked for: the token index is the generated-token count
                reason, usage = "stop", Usage(0, as_count(event.get("index")))
            events.append(Finish(reason, usage))
        return events

    def _llamacpp(self, event: Mapping[str, Any]) -> list[Event]:
        text = event.get("content")
        events = self._delta(text if isinstance(text, str) else "")
        if event.get("stop") is True:
            hit_limit = event.get("stop_type") == "limit" or event.get("stopped_limit") is True
            usage = Usage(
                as_count(event.get("tokens_evaluated")), as_count(event.get("tokens_predicted"))
            )
            events.append(Finish("length" if hit_limit else "stop", usage))
        return events

    def _delta(self, text: str) -> list[Event]:
        text = self._trim.push(text)
        return [Delta(text)] if text else []


class TrimmedText:
    """Streams pieces of text so that their concatenation is the whole text, stripped of the
    whitespace the non-streamed reply loses (Lua's ``%s``: ASCII only)."""

    def __init__(self) -> None:
        self._started = False
        self._held = ""  # trailing whitespace, released only when more text follows it

    def push(self, piece: str) -> str:
        if not self._started:
            piece = piece.lstrip(LUA_SPACE)
            if not piece:
                return ""
            self._started = True
        piece = self._held + piece
        kept = piece.rstrip(LUA_SPACE)
        self._held = piece[len(kept) :]
        return kept
