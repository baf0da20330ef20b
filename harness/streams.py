"""Reading a client's event stream as the harness sees it: written from the SSE specification,
independent of any gateway's code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EventStream:
    """The ``data:`` payloads of a server-sent event stream, in order, and how it ended."""

    payloads: list[str] = field(default_factory=list)
    done: bool = False  # a ``data: [DONE]`` payload arrived
    done_terminated: bool = False  # ... followed by the blank line that ends an event
    after_done: list[str] = field(default_factory=list)  # payloads sent after [DONE]

    def json_events(self) -> list[Any]:
        """The payloads before ``[DONE]`` decoded; a payload that is not JSON stays a string."""
        events = []
        for payload in self.payloads:
            try:
                events.append(json.loads(payload))
            except ValueError:
                events.append(payload)
        return events


def parse_sse(body: bytes) -> EventStream:
    """Split ``body`` into events on blank lines and join each event's ``data:`` lines."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    stream = EventStream()
    blocks = text.split("\n\n")
    for index, block in enumerate(blocks):
        lines = block.split("\n")
        data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
        if not data:
            continue
        payload = "\n".join(data)
        if stream.done:
            stream.after_done.append(payload)
        elif payload == "[DONE]":
            stream.done = True
            stream.done_terminated = index < len(blocks) - 1  # a blank line followed it
        else:
            stream.payloads.append(payload)
    return stream


def chunk_text(event: Any) -> str:
    """The text one OpenAI-style chunk carries (chat delta content or completion text)."""
    if not isinstance(event, dict):
        return ""
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return text if isinstance(text, str) else ""


def finish_reasons(events: list[Any]) -> list[str]:
    found = []
    for event in events:
        choices = event.get("choices") if isinstance(event, dict) else None
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            reason = choices[0].get("finish_reason")
            if reason is not None:
                found.append(reason)
    return found
