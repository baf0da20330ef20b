"""What happens to every request to a mock, from the received bytes to the written reply.

In this order:

1. parse the body as strict JSON (``strict_json``) and journal the request (``/__mock__/``
   control requests excepted);
2. control-API scripts: the first matching script wins (``response`` answers at once; ``reply``
   replaces the generated text; a ``fault`` replaces the reply or alters it on the way out);
3. the API-key check when ``settings.api_key`` is set (``Authorization: Bearer <key>``, and
   ``X-Api-Key`` where ``KIND.x_api_key``, as on llama.cpp); endpoints marked ``public`` skip it; a
   bad key gets ``KIND.unauthorized(call)``;
4. the endpoint's handler (an unknown path gets ``KIND.not_found(call)``, a known path with the
   wrong method a 405 from ``KIND.error``; a handler that raises gets ``KIND.error(500, ...)``,
   never aiohttp's HTML page); ``GET`` endpoints also answer ``HEAD``;
5. ``settings.latency`` when the handler generated text (``call.generate``), then the reply is
   written by ``transmit.transmit``.

A ``Source`` (``--replay DIR``, ``--record-from URL``) answers in place of step 3 and 4 for a
request no script answered or gave a reply text to: a cassette's reply (a fault still alters
it), a pass-through to the real server it relays itself, or None for the mock's own reply.

The endpoint is looked up before the scripts run, so every reply, a fault's included, sees the
``call.match_info`` of its path (the HF Inference API's loading reply names the requested model).

An endpoint may name its own mid-stream error frame (``Endpoint.stream_error``), which the
``stream_error`` fault then uses instead of ``KIND.stream_error`` (Ollama's ``/v1`` streams get SSE
errors, its native ones NDJSON).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from aiohttp import web

from . import fault_spec, strict_json, transmit
from .base import (
    BytesReply,
    Call,
    Endpoint,
    JsonReply,
    MockKind,
    MockSettings,
    Reply,
    StreamReply,
)
from .endpoint_table import EndpointTable
from .journal import JournalEntry
from .state import MockState

logger = logging.getLogger("mocks")
MAX_BODY = 64 * 1024 * 1024
_REPLY_TYPES = (JsonReply, BytesReply, StreamReply)

_COMPRESSED = frozenset({"gzip", "x-gzip", "deflate", "br"})

Log = Callable[[str], None]


class Source(Protocol):
    """What answers requests in place of the handlers (``replayer``, ``recorder``)."""

    async def answer(self, request: web.Request, call: Call, entry: JournalEntry
                     ) -> Reply | web.StreamResponse | None: ...


class Pipeline:
    def __init__(
        self, mock: MockKind, settings: MockSettings, state: MockState, log: Log | None,
        source: Source | None = None,
    ) -> None:
        self.kind, self.settings, self.state, self.log = mock, settings, state, log
        self.source = source
        self.table = EndpointTable(mock.endpoints)
        self.key = settings.api_key.encode() if settings.api_key is not None else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        body, refusal = await self._read(request)
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if refusal is None and self.kind.refuses_content_encoding and encoding in _COMPRESSED:
            # cpp-httplib built without zlib (llama.cpp's default) refuses what it cannot inflate
            refusal = self.kind.error(415, f"Unsupported Content-Encoding: {encoding}")
        # Read as sent, whatever Content-Encoding says (``app``): as gin and axum do
        parsed = strict_json.parse_body(body, replace=self.kind.replaces_bad_unicode)
        self.state.sync()  # another worker's model change (--workers N)
        call = Call(
            request.method, request.path, {}, request.query, request.headers, body,
            self.state.settings, parsed, set_models=self.state.set_models,
        )
        entry = self.state.journal.record(call)  # first: a refused request is journaled too
        try:
            if refusal is not None:
                return await self._transmit(request, refusal, None, entry, self.kind.stream_error)
            return await self._respond(request, call, entry)
        finally:
            self.state.journal.finish(entry)
            if self.log is not None:
                self.log(_log_line(self.kind.name, entry, started))

    async def _read(self, request: web.Request) -> tuple[bytes, Reply | None]:
        """The body, or a refusal in the kind's dialect when it cannot be read whole."""
        try:
            return await request.read(), None
        except web.HTTPRequestEntityTooLarge:
            return b"", self.kind.error(413, f"request body larger than {MAX_BODY} bytes")
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as problem:  # a malformed chunked body, a payload error
            logger.warning("mock %s: unreadable request body: %s", self.kind.name,
                           type(problem).__name__)
            return b"", self.kind.error(400, "the request body could not be read")

    async def _respond(
        self, request: web.Request, call: Call, entry: JournalEntry
    ) -> web.StreamResponse:
        found = self.table.resolve(call.path)
        if found is not None:
            call.match_info = found[1]
        stream_error = self.kind.stream_error
        script = self.state.scripts.match(call) if self.state.scripts else None
        if script is not None and script.response is not None:
            return await self._transmit(request, script.response, None, entry, stream_error)
        if script is not None and script.reply is not None:
            call.scripted_reply = script.reply
        fault = script.fault if script is not None else None
        if fault is not None and fault.kind in fault_spec.REPLACING:
            reply = fault_spec.fault_reply(fault, self.kind, call)
            return await self._transmit(request, reply, fault, entry, stream_error)
        answered = None
        if self.source is not None and call.scripted_reply is None:
            answered = await self.source.answer(request, call, entry)
            if isinstance(answered, web.StreamResponse):
                return answered  # relayed from the real server as it arrived
        if answered is not None:
            reply, endpoint = answered, found[0].get(call.method) if found else None
        else:
            reply, endpoint = self._dispatch(call, None if found is None else found[0])
        breaks_stream = fault is not None and fault.kind == "stream_error"
        if breaks_stream and not isinstance(reply, StreamReply):
            reply = self.kind.error(500, fault.message)  # no stream to break: a plain error
        if endpoint is not None and endpoint.stream_error is not None:
            stream_error = endpoint.stream_error
        latency = self.settings.latency if call.generated else 0.0
        if latency and not await transmit.pause(request, latency):
            entry.outcome = "client_disconnected"
            return web.Response(status=204)
        return await self._transmit(request, reply, fault, entry, stream_error)

    async def _transmit(
        self, request: web.Request, reply: Reply | None, fault: fault_spec.Fault | None,
        entry: JournalEntry, stream_error: Callable[[str], bytes],
    ) -> web.StreamResponse:
        try:
            return await transmit.transmit(request, reply, fault, entry, stream_error)
        except Exception as problem:
            if entry.status is not None:  # the headers are out: nothing sensible left to send
                raise
            log_failure(f"mock {self.kind.name} could not send its reply", problem)
            error = self._internal_error(problem)
            return await transmit.transmit(request, error, None, entry, stream_error)

    def _dispatch(
        self, call: Call, methods: dict[str, Endpoint] | None
    ) -> tuple[Reply, Endpoint | None]:
        if methods is None:
            return self._run(self.kind.not_found, call), None
        endpoint = methods.get(call.method)
        if endpoint is None and call.method == "HEAD":
            endpoint = methods.get("GET")
        if endpoint is None:
            allowed = ", ".join(sorted({*methods, *(("HEAD",) if "GET" in methods else ())}))
            message = f"Method {call.method} is not allowed on {call.path}; use {allowed}"
            refuse = self.kind.method_not_allowed or (lambda c: self.kind.error(405, message))
            reply = self._run(refuse, call)
            if reply.status == 405:  # llama.cpp's httplib answers a wrong method 404, no Allow
                reply.headers["Allow"] = allowed
            return reply, None
        if self.key is not None and not endpoint.public and not self._authorized(call.headers):
            return self._run(self.kind.unauthorized, call), endpoint
        return self._run(endpoint.handler, call), endpoint

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        assert self.key is not None
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.key):
            return True
        presented = headers.get("X-Api-Key") if self.kind.x_api_key else None
        return presented is not None and hmac.compare_digest(presented.encode(), self.key)

    def _run(self, handler: Callable[[Call], Reply], call: Call) -> Reply:
        try:
            reply = handler(call)
            if not isinstance(reply, _REPLY_TYPES):
                raise TypeError(f"handler returned {type(reply).__name__}, not a Reply")
            return reply
        except Exception as problem:
            log_failure(f"mock {self.kind.name} failed on {call.method} {call.path}", problem)
            return self._internal_error(problem)

    def _internal_error(self, problem: Exception) -> Reply:
        message = f"mock internal error: {type(problem).__name__}: {problem}"
        try:
            reply = self.kind.error(500, message)
            if isinstance(reply, _REPLY_TYPES):
                return reply
        except Exception as again:
            log_failure(f"mock {self.kind.name}: its error handler failed too", again)
        return JsonReply(500, {"error": message})


def log_failure(what: str, problem: BaseException) -> None:
    """One log line for an unexpected failure; the traceback only at DEBUG (never to a client)."""
    logger.error("%s: %s: %s", what, type(problem).__name__, str(problem)[:200])
    logger.debug("%s", what, exc_info=problem)


def _log_line(name: str, entry: JournalEntry, started: float) -> str:
    """One line per request; never header values or the query string (credentials live there)."""
    milliseconds = (time.perf_counter() - started) * 1000
    status = "-" if entry.status is None else str(entry.status)
    line = f"{name} {entry.method} {entry.path} {status} {milliseconds:.0f}ms"
    return line if entry.outcome == "completed" else f"{line} {entry.outcome}"
