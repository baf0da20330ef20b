"""Faults as data: what a control-API script's ``fault`` may say, parsed into a frozen ``Fault``,
and the reply a replacing fault stands for. Pure: ``transmit`` acts on faults at the socket.

A fault is what a script can do to the reply on its way out (WireMock's repertoire, plus the LLM
servers' own failure modes). Kinds and their parameters (defaults in brackets):

=======================  ====================================================================
``status``               any status and body: ``status``, ``json`` | ``body``, ``headers``,
                         ``content_type`` (the same fields as a script's ``response``)
``latency``              ``seconds``: wait before the headers, then the normal reply
``chunk_delay``          ``seconds``: wait between stream frames (a slow token stream)
``reset_before_headers`` a TCP reset (RST) before a single byte of the response
``reset_mid_stream``     ``after_frames`` (1): the headers and that many frames, then a reset
``empty_response``       close the connection cleanly without sending a single byte
``malformed_json``       valid status and headers; the body (or the first stream frame) is cut
                         in half so it no longer parses
``truncated_stream``     ``after_frames`` (1): that many frames, then a clean end of the
                         response without the final frames (no ``[DONE]``, no ``done:true``)
``rate_limit``           ``retry_after`` (1): 429 in the server's dialect with ``Retry-After``
``loading``              ``estimated_time`` (20.0): the server's "model is loading" reply
``stream_error``         ``after_frames`` (1), ``message``: that many frames, then the server's
                         mid-stream error event, then the end of the stream
=======================  ====================================================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import BytesReply, Call, JsonReply, MockKind, Reply

# Fault kinds that replace the reply; the others alter the normal reply on its way out.
REPLACING = frozenset({"status", "rate_limit", "loading", "reset_before_headers", "empty_response"})
_PARAMETERS: dict[str, dict[str, Any]] = {
    "status": {},  # validated as a response
    "latency": {"seconds": None},
    "chunk_delay": {"seconds": None},
    "reset_before_headers": {},
    "reset_mid_stream": {"after_frames": 1},
    "empty_response": {},
    "malformed_json": {},
    "truncated_stream": {"after_frames": 1},
    "rate_limit": {"retry_after": 1},
    "loading": {"estimated_time": 20.0},
    "stream_error": {"after_frames": 1, "message": "mock stream error"},
}
FAULT_KINDS = tuple(_PARAMETERS)
_RESPONSE_FIELDS = frozenset({"status", "json", "body", "headers", "content_type"})


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 0.0
    after_frames: int = 1
    retry_after: float = 1.0
    estimated_time: float = 20.0
    message: str = "mock stream error"
    response: Reply | None = None  # the reply of a ``status`` fault


def _number(name: str, value: Any, *, integer: bool = False) -> float:
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or (integer and not isinstance(value, int)) or not 0 <= value < math.inf:
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise ValueError(f"{name!r} must be {kind}, got {json.dumps(value)}")
    return value


def string_map(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{name!r} must be an object of strings")
    return dict(value)


def parse_response(spec: Any, where: str = "response") -> Reply:
    """A scripted reply from ``{"status", "json" | "body", "headers", "content_type"}``."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where!r} must be an object")
    unknown = set(spec) - _RESPONSE_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) in {where!r}: {', '.join(sorted(unknown))}")
    status = spec.get("status", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"{where}.status must be an HTTP status code (100-599)")
    if "json" in spec and "body" in spec:
        raise ValueError(f"{where!r} takes 'json' or 'body', not both")
    headers = string_map(f"{where}.headers", spec.get("headers", {}))
    content_type = spec.get("content_type")
    if content_type is not None and not isinstance(content_type, str):
        raise ValueError(f"{where}.content_type must be a string")
    if "json" in spec:
        return JsonReply(status, spec["json"], headers, content_type or "application/json")
    text = spec.get("body", "")
    if not isinstance(text, str):
        raise ValueError(f"{where}.body must be a string (use 'json' for JSON)")
    return BytesReply(status, text.encode(), content_type or "text/plain; charset=utf-8", headers)


def parse_fault(spec: Any) -> Fault:
    """A ``Fault`` from its control-API JSON; ``ValueError`` with a clear message if invalid."""
    if not isinstance(spec, dict):
        raise ValueError("'fault' must be an object with a 'kind'")
    kind = spec.get("kind")
    if kind not in _PARAMETERS:
        raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}")
    params = {k: v for k, v in spec.items() if k != "kind"}
    if kind == "status":
        return Fault(kind, response=parse_response(params, "fault"))
    allowed = _PARAMETERS[kind]
    unknown = set(params) - set(allowed)
    if unknown:
        names = ", ".join(allowed) or "no parameters"
        raise ValueError(f"fault {kind!r} takes {names}; unknown: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, default in allowed.items():
        value = params.get(name, default)
        if value is None:
            raise ValueError(f"fault {kind!r} needs {name!r}")
        if name == "message":
            if not isinstance(value, str):
                raise ValueError("'message' must be a string")
            values[name] = value
        else:
            values[name] = _number(name, value, integer=name == "after_frames")
    return Fault(kind, **values)


def describe_faults() -> dict[str, Mapping[str, Any]]:
    """Fault kinds and their parameters with defaults (for ``GET /__mock__/``)."""
    described: dict[str, Mapping[str, Any]] = dict(_PARAMETERS)
    described["status"] = {"status": 200, "json | body": None, "headers": {}, "content_type": None}
    return described


def fault_reply(fault: Fault, kind: MockKind, call: Call) -> Reply | None:
    """The reply a replacing fault answers ``call`` with (None for resets and empty responses)."""
    if fault.kind == "status":
        return fault.response
    if fault.kind == "rate_limit":
        reply = kind.error(429, f"Rate limit reached: please try again in {fault.retry_after:g}s.")
        reply.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        return reply
    if fault.kind == "loading":
        return kind.loading(call, fault.estimated_time)
    return None
