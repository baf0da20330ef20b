"""What a stream translator hands the client encoder: upstream-neutral stream events.

Every translator turns its upstream's framing (Ollama NDJSON, TGI or llama.cpp SSE, OpenAI SSE)
into the same few events, so the client side is written once. Events are small frozen values:
a translator's output for a given byte stream can be compared for equality, which is what the
"any split of the input gives the same events" property tests rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..model import CHAT

# Why a stream cannot go on; the client's error event names it (``client._ERROR_TYPES``).
StreamFailureKind = Literal["upstream_error", "malformed", "truncated", "connection"]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Delta:
    """A piece of the reply: text and/or OpenAI-shaped tool-call deltas.

    ``model`` is the model the upstream named on this piece, if it names one.
    """

    text: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    model: str | None = None


@dataclass(frozen=True)
class Relay:
    """An upstream SSE ``data:`` payload to pass to the client byte for byte (openai format).

    ``text`` is the content it carries, parsed out for analytics only.
    """

    data: str
    text: str = ""


@dataclass(frozen=True)
class Finish:
    """The generation ended normally. ``usage`` holds the upstream's counts when it gave any."""

    reason: str | None
    usage: Usage | None = None
    model: str | None = None


@dataclass(frozen=True)
class Failure:
    """The stream cannot go on: an upstream error frame, a broken frame, or an early end.

    ``error`` is the upstream's own error object when it sent one as a JSON object.
    """

    kind: StreamFailureKind
    message: str
    error: Mapping[str, Any] | None = None


Event = Delta | Relay | Finish | Failure


def is_terminal(event: Event) -> bool:
    return isinstance(event, Finish | Failure)


def usage_from(value: object) -> Usage | None:
    """An OpenAI-style ``usage`` object as ``Usage``; None when it is missing or not an object."""
    if not isinstance(value, Mapping):
        return None
    return Usage(as_count(value.get("prompt_tokens")), as_count(value.get("completion_tokens")))


def as_count(value: object) -> int:
    """A token count from an upstream field; missing or nonsense counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def events_from_completion(body: Mapping[str, Any], route_type: str) -> list[Event]:
    """The events of a whole (non-streamed) client-shaped reply: one delta, then the finish.

    Used when an upstream answers a streaming request with a single JSON document.
    """
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    if not isinstance(choice, Mapping):
        choice = {}
    model = body.get("model") if isinstance(body.get("model"), str) else None
    if route_type == CHAT:
        message = choice.get("message")
        message = message if isinstance(message, Mapping) else {}
        text = message.get("content")
        calls = message.get("tool_calls")
        tool_calls = tuple(
            {"index": index, **call}
            for index, call in enumerate(calls if isinstance(calls, list) else [])
            if isinstance(call, Mapping)
        )
    else:
        text, tool_calls = choice.get("text"), ()
    text = text if isinstance(text, str) else ""
    reason = choice.get("finish_reason")
    events: list[Event] = []
    if text or tool_calls:
        events.append(Delta(text, tool_calls, model))
    reason = reason if isinstance(reason, str) else "stop"
    events.append(Finish(reason, usage_from(body.get("usage")), model))
    return events
