"""A small server the mocks have never seen, for the cassette tests: distinctive replies, an
NDJSON stream, an SSE stream (one event written in two pieces), and a credential it requires.

``/api/generate`` streams its first line and then waits until the test opens ``gate``: a client
that has seen the first line while the server still holds the rest proves that recording relays
a stream as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from proxyproof.serving import ThreadedServer

SECRET = "sekrit-bearer-4711"
LINES = [b'{"model":"zebra","response":"quokka","done":false}\n',
         b'{"model":"zebra","response":" narwhal","done":false}\n',
         b'{"model":"zebra","response":"","done":true,"done_reason":"stop"}\n']
EVENTS = [b'data: {"id":"x1","choices":[{"delta":{"content":"axolotl"}}]}\n\n',
          b'data: {"id":"x1","choices":[{"delta":{"content":" pangolin"}}]}\n\n',
          b"data: [DONE]\n\n"]
TAGS = {"models": [{"name": "zebra:7b", "digest": "feedface"}]}


class Upstream:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate_opened_in_time: bool | None = None
        self.authorizations: list[str | None] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/generate", self.generate)
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_get("/api/tags", self.tags)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json()
        if body.get("stream") is False:
            seed = body.get("options", {}).get("seed")
            return web.json_response({"model": "zebra", "message": {
                "role": "assistant", "content": f"wombat {seed}"}, "done": True})
        return await self._ndjson(request, LINES)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(LINES[0])
        opened = await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 10)
        self.gate_opened_in_time = opened
        for line in LINES[1:]:
            await response.write(line)
        await response.write_eof()
        return response

    async def _ndjson(self, request: web.Request, lines: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for line in lines:
            await response.write(line)
        await response.write_eof()
        return response

    async def completions(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "X-Upstream-Marker": "okapi"})
        await response.prepare(request)
        first = EVENTS[0]
        await response.write(first[:20])  # one event in two writes: one frame all the same
        await response.write(first[20:])
        for event in EVENTS[1:]:
            await asyncio.sleep(0.02)  # pacing to record (not synchronisation)
            await response.write(event)
        await response.write_eof()
        return response

    async def tags(self, request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(TAGS).encode(), content_type="application/json")


@contextmanager
def running_upstream() -> Iterator[tuple[Upstream, ThreadedServer]]:
    upstream = Upstream()
    server = ThreadedServer(upstream.app).start()
    try:
        yield upstream, server
    finally:
        upstream.gate.set()
        server.stop()
