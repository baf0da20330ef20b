"""Ollama's native stream (``/api/chat``, ``/api/generate``): NDJSON, one object per line.

Content lines carry ``message.content`` (chat) or ``response`` (generate) and ``done: false``; the
last line has ``done: true``, ``done_reason`` and the token counts, and may carry text too. A
mid-stream error is one more line, ``{"error": "..."}``, and then the stream simply ends.

Fixed mode emits a ``Delta`` per line with text or tool calls and a ``Finish`` from the done line;
an error line, a line that is not a JSON object, or an end without ``done: true`` is a ``Failure``.

Kong-compatibility mode reproduces Kong's translator (``kong/llm/drivers/shared.lua``,
``from_ollama()`` on stream frames): every line but the done line becomes a chunk, even an empty
one (an error line gives an empty chunk with no model); the done line's own text is dropped; a
broken line is skipped silently; an early end is not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..json_text import compact_json
from .events import Delta, Event, Finish, Usage, as_count
from .framing import NdjsonDecoder
from .translator import (
    FrameTranslator,
    json_object,
    malformed,
    truncated,
    upstream_failure,
)


class OllamaTranslator(FrameTranslator[str]):
    def __init__(self, *, max_tokens: int | None = None, kong_compat: bool = False) -> None:
        """``max_tokens`` is the effective ``num_predict``: a done line without ``done_reason``
        that used exactly that many tokens finished for ``length``."""
        super().__init__(NdjsonDecoder())
        self._max_tokens = max_tokens
        self._compat = kong_compat
        self._tool_calls_seen = 0

    def on_frame(self, frame: str) -> list[Event]:
        line = json_object(frame)
        if line is None:
            return [] if self._compat else [malformed("a stream line that is not a JSON object")]
        model = line.get("model") if isinstance(line.get("model"), str) else None
        done = line.get("done") is True
        if self._compat:
            return [self._finish(line, model)] if done else [Delta(_text(line), (), model)]
        if line.get("error") is not None:
            return [upstream_failure(line["error"])]
        events: list[Event] = []
        text, tool_calls = _text(line), self._tool_calls(line)
        if text or tool_calls:
            events.append(Delta(text, tool_calls, model))
        if done:
            events.append(self._finish(line, model))
        return events

    def on_end(self) -> list[Event]:
        if self._compat:
            return []
        return [truncated("before its done:true line")]

    def _finish(self, line: Mapping[str, Any], model: str | None) -> Finish:
        usage = Usage(as_count(line.get("prompt_eval_count")), as_count(line.get("eval_count")))
        if self._compat:
            return Finish(None, usage, model)
        reason = line.get("done_reason")
        if not isinstance(reason, str) or not reason:
            hit_limit = self._max_tokens is not None and usage.completion_tokens == self._max_tokens
            reason = "length" if hit_limit else "stop"
        return Finish(reason, usage, model)

    def _tool_calls(self, line: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
        """Ollama tool calls (arguments as an object) as OpenAI tool-call deltas (a JSON string)."""
        message = line.get("message")
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        deltas = []
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            index = self._tool_calls_seen
            self._tool_calls_seen += 1
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = compact_json(arguments or {})
            call_id = call.get("id")
            deltas.append(
                {
                    "index": index,
                    "id": call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                    "type": "function",
                    "function": {"name": function.get("name"), "arguments": arguments},
                }
            )
        return tuple(deltas)


def _text(line: Mapping[str, Any]) -> str:
    message = line.get("message")
    text = message.get("content") if isinstance(message, dict) else line.get("response")
    return text if isinstance(text, str) else ""
