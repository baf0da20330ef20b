"""Faults, and the I/O edge that writes a reply to the socket — faithfully or not.

A fault is what a control-API script can do to the reply on its way out (WireMock's repertoire,
plus the LLM servers' own failure modes). Kinds and their parameters:

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

For a non-streamed reply, "frames" do not exist: ``reset_mid_stream`` sends the headers and half
the body, ``truncated_stream`` sends half the body and ends the (chunked) response cleanly,
``stream_error`` answers the server's 500 error instead, and ``chunk_delay`` does nothing.
If a stream has fewer frames than ``after_frames``, all of them are sent before the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from .base import BytesReply, Call, JsonReply, MockKind, Reply, StreamReply, compact_json

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
_STEP = 0.05  # how often a pause looks whether the client is still there


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 0.0
    after_frames: int = 1
    retry_after: float = 1.0
    estimated_time: float = 20.0
    message: str = "mock stream error"
    response: Reply | None = None  # the reply of a ``status`` fault


class Entry(Protocol):
    """What the edge records about a request (``control.JournalEntry``)."""

    status: int | None
    outcome: str
    frames_sent: int
    frame_times: list[float]


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


def corrupt(payload: bytes) -> bytes:
    """Cut a JSON document (or one SSE / NDJSON frame of one) in half, keeping its framing."""
    content = payload.rstrip(b"\r\n")
    ending = payload[len(content) :]
    prefix = b""
    if content.startswith(b"data:"):
        cut = 6 if content[5:6] == b" " else 5
        prefix, content = content[:cut], content[cut:]
    broken = content[: len(content) // 2]
    try:
        json.loads(broken)
    except ValueError:
        return prefix + broken + ending
    return prefix + broken + b"}" + ending  # half of a tiny document can still parse


def _headers(reply: Reply) -> dict[str, str]:
    headers = dict(reply.headers)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = reply.content_type
    return headers


def body_bytes(reply: JsonReply | BytesReply) -> bytes:
    return compact_json(reply.body) if isinstance(reply, JsonReply) else reply.body


def _client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.BaseRequest, seconds: float) -> bool:
    """Wait ``seconds``; False as soon as the client has gone (no point waiting for nobody)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not _client_gone(request):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return True
        await asyncio.sleep(min(remaining, _STEP))
    return False


def reset(request: web.BaseRequest) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), not a polite FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not a TCP socket (a test transport): just abort
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _placeholder() -> web.Response:
    # What a handler returns after it has dealt with the socket itself; aiohttp's own attempt to
    # send it fails quietly on the closed transport.
    return web.Response(status=204)


async def transmit(
    request: web.BaseRequest,
    reply: Reply | None,
    fault: Fault | None,
    entry: Entry,
    stream_error: Callable[[str], bytes],
) -> web.StreamResponse:
    """Write ``reply`` under ``fault`` and record status, frames and outcome in ``entry``."""
    kind = fault.kind if fault else None
    if kind == "latency" and not await pause(request, fault.seconds):
        entry.outcome = "client_disconnected"
        return _placeholder()
    if kind == "reset_before_headers":
        reset(request)
        entry.outcome = "reset"
        return _placeholder()
    if kind == "empty_response":
        if request.transport is not None:
            request.transport.close()
        entry.outcome = "empty"
        return _placeholder()
    assert reply is not None
    try:
        if isinstance(reply, StreamReply):
            return await _send_stream(request, reply, fault, entry, stream_error)
        return await _send_body(request, reply, fault, entry)
    except ConnectionError:
        entry.outcome = "client_disconnected"
        return _placeholder()


async def _send_body(
    request: web.BaseRequest, reply: JsonReply | BytesReply, fault: Fault | None, entry: Entry
) -> web.StreamResponse:
    kind = fault.kind if fault else None
    payload = body_bytes(reply)
    headers = _headers(reply)
    entry.status = reply.status
    if kind in ("reset_mid_stream", "truncated_stream"):
        if kind == "reset_mid_stream":
            headers["Content-Length"] = str(len(payload))
        response = web.StreamResponse(status=reply.status, headers=headers)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        if kind == "reset_mid_stream":
            reset(request)
            entry.outcome = "reset"
            return response
        await response.write_eof()
        entry.outcome = "truncated"
        return response
    if kind == "malformed_json":
        payload = corrupt(payload)
    response = web.Response(body=payload, status=reply.status, headers=headers)
    await response.prepare(request)
    await response.write_eof()
    return response


# Fault kinds that end a stream after ``after_frames`` frames.
_STOPPING = frozenset({"reset_mid_stream", "truncated_stream", "stream_error"})


async def _write_frame(response: web.StreamResponse, entry: Entry, frame: bytes) -> None:
    await response.write(frame)
    entry.frames_sent += 1
    entry.frame_times.append(time.time())


async def _send_stream(
    request: web.BaseRequest,
    reply: StreamReply,
    fault: Fault | None,
    entry: Entry,
    stream_error: Callable[[str], bytes],
) -> web.StreamResponse:
    kind = fault.kind if fault else None
    entry.status = reply.status
    response = web.StreamResponse(status=reply.status, headers=_headers(reply))
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    frames = reply.frames[: int(fault.after_frames)] if kind in _STOPPING else reply.frames
    if kind == "malformed_json" and frames:
        frames = [corrupt(frames[0]), *frames[1:]]
    delay = fault.seconds if kind == "chunk_delay" else 0.0
    for index, frame in enumerate(frames):
        if delay and index and not await pause(request, delay):
            entry.outcome = "client_disconnected"
            return response
        await _write_frame(response, entry, frame)
    if kind == "reset_mid_stream":
        reset(request)
        entry.outcome = "reset"
        return response
    if kind == "stream_error":
        await _write_frame(response, entry, stream_error(fault.message))
    await response.write_eof()
    if kind == "truncated_stream" and len(frames) < len(reply.frames):
        entry.outcome = "truncated"
    return response


def describe_faults() -> dict[str, Mapping[str, Any]]:
    """Fault kinds and their parameters with defaults (for ``GET /__mock__/``)."""
    described: dict[str, Mapping[str, Any]] = dict(_PARAMETERS)
    described["status"] = {"status": 200, "json | body": None, "headers": {}, "content_type": None}
    return described
