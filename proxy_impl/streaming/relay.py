"""The I/O edge of streaming: upstream body in, client ``text/event-stream`` out.

Each read of the upstream body goes through the translator and the client encoder and is written
at once: nothing is buffered beyond one read, and the stream's first token goes out before the
rest of its read is translated (``Translator.lead``). A write is awaited before the next read, so
a slow client slows the upstream down through TCP (backpressure) instead of filling memory. While
the upstream is quiet the client connection is watched, so a client that hangs up makes the proxy
close the upstream request within ``CLIENT_CHECK_SECONDS``, not at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import web
from multidict import CIMultiDict

from ..http_client import Body, Response, UpstreamError
from ..model import RAW, ReplyStamp
from .client import KONG_UNSUPPORTED, ClientStream
from .events import Event, Failure, events_from_completion
from .outcome import StreamOutcome, Tally
from .plan import StreamPlan, framing_of, translator_for

log = logging.getLogger(__name__)

CLIENT_CHECK_SECONDS = 0.05
MAX_JSON_ANSWER_BYTES = 16 << 20  # a whole JSON answer to a streaming request is read at once


class ClientGone(Exception):
    """The client closed its connection: stop, and close the upstream request."""


async def relay_stream(
    request: web.Request, upstream: Response, plan: StreamPlan
) -> web.StreamResponse:
    """Stream the 200 answer ``upstream`` to the client as the plan says; see the package doc."""
    relay = _Relay(request, upstream, plan)
    watch = _ClientWatch(request, upstream.content)
    try:
        await relay.run()
    except ClientGone:
        pass  # nobody to answer; the outcome says how far the stream went
    finally:
        watch.cancel()
        # mid-body (the client gone, the upstream broken, the stream over before the upstream
        # finished): the connection is dropped, so the upstream stops generating
        upstream.release()
        _report(plan.on_done, relay.tally.outcome())
    return relay.response


class _Relay:
    def __init__(self, request: web.Request, upstream: Response, plan: StreamPlan) -> None:
        self.request, self.upstream, self.plan = request, upstream, plan
        self.tally = Tally(keep_text=plan.keep_text)
        self.response = web.StreamResponse()  # replaced by the response actually sent
        self.encoder = _encoder(plan)
        self._head_held = False  # the response's head waits to go out with the first events

    async def run(self) -> None:
        plan = self.plan
        content_type = self.upstream.headers.get("Content-Type")
        framing = framing_of(content_type, plan.llama2_format)
        if plan.kong_compat and plan.llama2_format == RAW and framing in ("sse", "ndjson"):
            return await self._kong_empty_stream()
        if framing == "json" and not plan.kong_compat and plan.decode_json is not None:
            return await self._whole_answer()
        translator = translator_for(plan, framing)
        await self._open()
        if translator is None:
            if plan.kong_compat:
                await self._write(KONG_UNSUPPORTED)
            else:
                await self._send([_unsupported(plan, content_type)])
            return await self._close()
        while not self.encoder.ended:
            try:
                data = await self._next_read()
            except UpstreamError as error:  # every failure of the upstream body is one
                await self._send([_connection_failure(error)])
                break
            if not data:
                await self._send(translator.finish())
                break
            await self._send(translator.lead(data))  # the first token goes out on its own
            if translator.holding:
                await self._send(translator.feed(b""))
        await self._close()

    async def _whole_answer(self) -> None:
        """The upstream answered with one JSON document: decode it, send it as a short stream."""
        assert self.plan.decode_json is not None
        try:
            body = await self._read_body()
        except UpstreamError as error:
            events: list[Event] = [_connection_failure(error)]
        else:
            try:
                reply = self.plan.decode_json(body)
            except ValueError as error:  # not transformable: the non-streaming 500
                self.response = web.json_response(
                    {"error": {"message": str(error)}},
                    status=500,
                    headers=CIMultiDict(self.plan.headers_to_add),
                )
                return
            events = events_from_completion(reply, self.plan.route_type)
        await self._open()
        await self._send(events)
        await self._close()

    async def _kong_empty_stream(self) -> None:
        """Kong has no raw stream translator: every event fails and the client gets an empty
        200 once the upstream has finished."""
        await self._open()
        with contextlib.suppress(UpstreamError):  # the client's 200 is empty either way
            while await self._next_read():
                pass
        await self._close()

    async def _read_body(self) -> bytes:
        body = bytearray()
        while data := await self._next_read():
            body += data
            if len(body) > MAX_JSON_ANSWER_BYTES:
                raise UpstreamError("upstream JSON answer is too large")
        return bytes(body)

    async def _next_read(self) -> bytes:
        """The next bytes of the upstream body, ``b""`` at its end; ``ClientGone`` if the client
        left (found here, or by ``_ClientWatch`` while the read waits)."""
        if _client_gone(self.request):
            raise ClientGone
        content = self.upstream.content
        if self._head_held and not content.ready():
            await self._write(b"")  # the upstream is quiet: the client gets the head meanwhile
        return await content.readany()

    async def _open(self) -> None:
        response = _EventStream(status=200, headers=CIMultiDict(self.plan.headers_to_add))
        response.content_type = "text/event-stream"
        response.headers.setdefault("Cache-Control", "no-cache")
        response.enable_chunked_encoding()
        self.response = response
        await response.prepare(self.request)
        self._head_held = True

    async def _send(self, events: list[Event]) -> None:
        self.tally.observe(events)
        data = self.encoder.encode(events)
        if self.encoder.ended:  # the last events and the end of the body in one send
            await self._close(data)
        elif data:
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        self._head_held = False
        try:
            await self.response.write(data)  # awaits the transport draining: backpressure
        except ConnectionError as error:
            raise ClientGone from error

    async def _close(self, data: bytes = b"") -> None:
        self._head_held = False
        try:
            await self.response.write_eof(data)  # (nothing when the body has ended already)
        except ConnectionError as error:
            raise ClientGone from error


class _EventStream(web.StreamResponse):
    """aiohttp sends a StreamResponse's head at ``prepare()``; this one's waits for the first
    write and goes out in the same send (as ``web.Response``'s does, by the same class switch;
    an aiohttp without it sends the head at ``prepare()``, as before). The relay writes at once
    when the upstream has nothing to read yet, so a slow first token does not hold the head."""

    _send_headers_immediately = False


class _ClientWatch:
    """aiohttp does not cancel a handler whose client hangs up, so while the relay runs the
    client's transport is checked every ``CLIENT_CHECK_SECONDS``; a client gone ends the wait
    for upstream bytes by failing the reader with ``ClientGone`` (the reader is closed after
    that anyway). One timer for the stream, not one per read: reads come once per chunk."""

    def __init__(self, request: web.Request, reader: Body) -> None:
        self._request, self._reader = request, reader
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(CLIENT_CHECK_SECONDS, self._check)

    def _check(self) -> None:
        if _client_gone(self._request):
            self._reader.set_exception(ClientGone())
        else:
            self._timer = self._loop.call_later(CLIENT_CHECK_SECONDS, self._check)

    def cancel(self) -> None:
        self._timer.cancel()


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _encoder(plan: StreamPlan) -> ClientStream:
    return ClientStream(
        route_type=plan.route_type,
        model=plan.model,
        stamp=ReplyStamp.mint(plan.route_type),
        include_usage=plan.include_usage,
        kong_compat=plan.kong_compat,
    )


def _unsupported(plan: StreamPlan, content_type: str | None) -> Failure:
    return Failure(
        "malformed",
        f"upstream answered the streaming request with content type {content_type or '(none)'}, "
        f"not a {plan.llama2_format}-format stream",
    )


def _connection_failure(error: BaseException) -> Failure:
    if isinstance(error, asyncio.TimeoutError):
        return Failure("connection", "upstream stopped sending (read timeout) mid-stream")
    detail = str(error) or type(error).__name__
    return Failure("connection", f"upstream connection failed mid-stream: {detail}")


def _report(on_done: Callable[[StreamOutcome], None] | None, outcome: StreamOutcome) -> None:
    if on_done is None:
        return
    try:
        on_done(outcome)
    except Exception:  # the response is already out; a logging bug must not turn into a 500
        log.exception("stream on_done callback failed")
