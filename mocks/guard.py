"""The last line of defence of every mock route: an exception nothing else caught becomes the
kind's JSON error (the control API's ``{"error": ...}`` under ``/__mock__``) and one log line,
never aiohttp's text "500 Internal Server Error" and never a traceback to the client.

The pipeline answers bad input deliberately and journals it; this only catches what is a bug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from .base import BytesReply, JsonReply, MockKind, Reply, compact_json
from .control_api import CONTROL_PREFIX
from .pipeline import log_failure
from .transmit import reply_headers

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def as_response(reply: Reply) -> web.Response:
    """A plain (unfaulted, unstreamed) reply as an aiohttp response."""
    if isinstance(reply, JsonReply):
        body = compact_json(reply.body)
    elif isinstance(reply, BytesReply):
        body = reply.body
    else:
        body = b"".join(reply.frames)
    return web.Response(body=body, status=reply.status, headers=reply_headers(reply))


def _error(kind: MockKind, request: web.Request, status: int, message: str) -> web.Response:
    if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
        return web.Response(body=compact_json({"error": message}), status=status,
                            content_type="application/json")
    try:
        return as_response(kind.error(status, message))
    except Exception:  # the kind's own error builder failed: still JSON
        return web.Response(body=compact_json({"error": message}), status=status,
                            content_type="application/json")


def middleware(kind: MockKind) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (asyncio.CancelledError, ConnectionError):
            raise  # the client went away: nothing to answer
        except web.HTTPException as problem:
            if problem.status < 400:
                raise
            return _error(kind, request, problem.status, problem.reason)
        except Exception as problem:
            log_failure(f"mock {kind.name} failed on {request.method} {request.path}", problem)
            return _error(kind, request, 500, f"the {kind.name} mock failed on this request")

    return guard
