"""Writing a reply to the socket: faithfully, or under a fault (``fault_spec.Fault``).

This is the one place that touches the transport. What each fault kind does to a stream is in
``fault_spec``; a non-streamed reply has no frames, so there ``reset_mid_stream`` sends the
headers and half the body, ``truncated_stream`` sends half the body and ends the (chunked)
response cleanly, ``stream_error`` answers the server's 500 error instead (the pipeline's choice)
and ``chunk_delay`` does nothing. If a stream has fewer frames than ``after_frames``, all of them
are sent before the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from .base import BytesReply, JsonReply, Reply, StreamReply, compact_json
from .fault_spec import Fault

_STEP = 0.05  # how often a pause looks whether the client is still there


class Entry(Protocol):
    """What the edge records about a request (``journal.JournalEntry``)."""

    status: int | None
    outcome: str
    frames_sent: int
    frame_times: list[float]


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


def reply_headers(reply: Reply) -> dict[str, str]:
    headers = dict(reply.headers)
    if reply.content_type and not any(name.lower() == "content-type" for name in headers):
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
    headers = reply_headers(reply)
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
    response = web.StreamResponse(status=reply.status, headers=reply_headers(reply))
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    frames = reply.frames[: int(fault.after_frames)] if kind in _STOPPING else reply.frames
    if kind == "malformed_json" and frames:
        frames = [corrupt(frames[0]), *frames[1:]]
    delay = fault.seconds if kind == "chunk_delay" else 0.0
    for index, frame in enumerate(frames):
        wait = (delay if index else 0.0) + (reply.delays[index] if index < len(reply.delays)
                                            else 0.0)
        if wait and not await pause(request, wait):
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
