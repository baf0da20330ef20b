"""Recording a real server (``proxyproof mock KIND --record-from URL --cassettes DIR``).

The request pipeline hands every request (after the journal and the control-API scripts) to
``Recorder.answer``, which passes it to the real server and its reply back to the client: a whole
body as it arrived, a stream (SSE or NDJSON, by the reply's Content-Type) frame by frame as each
frame completes, so the client sees tokens as the server sends them. Once the exchange has ended
whole, it is written to DIR as one cassette (``cassette``), credentials masked (``redaction``).

An exchange that did not end whole (the client left, the server broke off) is not written: a
cassette is always a reply the server really gave. A server that cannot be reached gets the
kind's own 502 error, not a cassette.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web
from yarl import URL

from . import field_path, transmit
from .base import NOT_JSON, Call, MockKind, Reply
from .cassette import Cassette, Frame, RecordedRequest, RecordedResponse, dumps, file_name
from .cassette_options import public_url
from .frames import FrameSplitter, stream_kind
from .redaction import UNRECORDED_HEADERS, Redaction

logger = logging.getLogger("mocks")
_CONNECT_TIMEOUT = 10.0
_READ_TIMEOUT = 600.0  # a large model on a busy GPU box can think for minutes between tokens


def _forwarded(headers: object) -> list[tuple[str, str]]:
    """The client's headers for the real server, less the per-connection ones."""
    kept = [(name, value) for name, value in headers.items()  # type: ignore[attr-defined]
            if name.lower() not in UNRECORDED_HEADERS or name.lower() == "content-encoding"]
    return [*kept, ("Accept-Encoding", "identity")]  # a readable body to record


def _returned(headers: object) -> list[tuple[str, str]]:
    """The real server's reply headers for the client; aiohttp frames the body itself."""
    return [(name, value) for name, value in headers.items()  # type: ignore[attr-defined]
            if name.lower() not in UNRECORDED_HEADERS]


def write_cassette(directory: Path, cassette: Cassette, name: str) -> Path:
    """Write atomically (a reader never sees half a file); the same name is replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    partial = directory / f".{name}.{os.getpid()}.partial"
    partial.write_text(dumps(cassette), encoding="utf-8")
    os.replace(partial, path)
    return path


class Recorder:
    """Passes requests to the real server and records each whole exchange (``pipeline.Source``)."""

    def __init__(self, kind: MockKind, target: str, directory: Path, redaction: Redaction,
                 ignored: Sequence[tuple[str, ...]] = (),
                 log: Callable[[str], None] | None = None) -> None:
        self.kind, self.directory, self.redaction = kind, directory, redaction
        self.target = target.rstrip("/")
        self.shown = public_url(target)
        self.ignored = tuple(ignored)
        self.log = log
        self.session: aiohttp.ClientSession | None = None

    async def session_context(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: one pooled client for the application's life."""
        timeout = aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT,
                                        sock_read=_READ_TIMEOUT)
        self.session = aiohttp.ClientSession(timeout=timeout, trust_env=False)
        yield
        await self.session.close()

    async def answer(self, request: web.Request, call: Call,
                     entry: transmit.Entry) -> web.StreamResponse | Reply:
        assert self.session is not None, "the recorder's session starts with the application"
        relative = request.rel_url
        raw = relative.raw_path + (f"?{relative.raw_query_string}"
                                   if relative.raw_query_string else "")
        try:
            upstream = await self.session.request(
                call.method, URL(self.target + raw, encoded=True), data=call.body,
                headers=_forwarded(call.headers), allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError, OSError) as problem:
            message = f"proxyproof could not reach {self.shown}: {type(problem).__name__}"
            return self.kind.error(502, message)
        async with upstream:
            stream = stream_kind(upstream.headers.get("Content-Type"))
            if stream is None or request.method == "HEAD":
                return await self._whole(request, call, upstream, entry)
            return await self._stream(request, call, upstream, stream, entry)

    async def _whole(self, request: web.Request, call: Call,
                     upstream: aiohttp.ClientResponse, entry: transmit.Entry) -> web.Response:
        try:
            body = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as problem:
            self._say(f"not recorded: {self.shown} broke off its reply ({type(problem).__name__})")
            transmit.reset(request)
            entry.outcome = "reset"
            return web.Response(status=204)
        entry.status = upstream.status
        response = RecordedResponse(upstream.status, self.redaction.header_map(
            upstream.headers.items()), body=body)
        await self._save(request, call, response)
        return web.Response(body=body, status=upstream.status,
                            headers=_returned(upstream.headers))

    async def _stream(self, request: web.Request, call: Call, upstream: aiohttp.ClientResponse,
                      stream: str, entry: transmit.Entry) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=_returned(upstream.headers))
        entry.status = upstream.status
        await response.prepare(request)
        splitter = FrameSplitter(stream)
        frames: list[Frame] = []
        first: float | None = None

        async def relay(frame: bytes) -> None:
            nonlocal first
            now = time.perf_counter()
            first = now if first is None else first
            frames.append(Frame(now - first, frame))
            await response.write(frame)
            entry.frames_sent += 1
            entry.frame_times.append(time.time())

        try:
            async for chunk in upstream.content.iter_any():
                for frame in splitter.feed(chunk):
                    await relay(frame)
            for frame in splitter.end():
                await relay(frame)
        except (aiohttp.ClientError, TimeoutError) as problem:
            self._say(f"not recorded: {self.shown} broke off its stream ({type(problem).__name__})")
            transmit.reset(request)  # the client sees the break the server made
            entry.outcome = "reset"
            return response
        except ConnectionError:
            entry.outcome = "client_disconnected"
            return response
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        recorded = RecordedResponse(upstream.status, self.redaction.header_map(
            upstream.headers.items()), stream=stream, frames=tuple(frames))
        await self._save(request, call, recorded)
        return response

    async def _save(self, request: web.Request, call: Call, response: RecordedResponse) -> None:
        masked = NOT_JSON if call.json is NOT_JSON else self.redaction.body(call.json)
        recorded = RecordedRequest(
            method=call.method, path=call.path,
            query=self.redaction.query_map(request.query.items()),
            headers=self.redaction.header_map(call.headers.items()),
            json=masked,
            text="" if masked is not NOT_JSON else call.body.decode("utf-8", "replace"),
        )
        stamp = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        cassette = Cassette(self.kind.name, recorded, response, self.shown,
                            stamp.isoformat().replace("+00:00", "Z"))
        matched = masked if masked is NOT_JSON else field_path.without(masked, self.ignored)
        name = file_name(call.method, call.path, matched)
        try:
            path = await asyncio.to_thread(write_cassette, self.directory, cassette, name)
        except (OSError, ValueError) as problem:  # the client has its reply all the same
            reason = problem.strerror if isinstance(problem, OSError) else None
            self._say(f"could not write cassette {self.directory / name}: {reason or problem}")
            return
        self._say(f"recorded {path}")

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(f"{self.kind.name} {line}")
        else:
            logger.info("mock %s %s", self.kind.name, line)
