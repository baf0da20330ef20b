"""The relay, the I/O edge of streaming, in front of a scripted upstream.

A stand-in pipeline (post to the upstream; relay its 200) keeps these tests independent of the
rest of the proxy. The upstream is scripted step by step and gated by events the test opens, so
ordering ("the first token arrived before the upstream sent the next one") is shown by
construction, never by timing.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from yarl import URL

from proxyproof.proxy_impl.http_client import Client, Timeouts
from proxyproof.proxy_impl.resolver import UpstreamResolver
from proxyproof.proxy_impl.streaming import StreamOutcome, StreamPlan, relay_stream
from proxyproof.proxy_impl.streaming.framing import SseDecoder
from proxyproof.serving import ThreadedServer

WAIT = 10.0  # upper bound on any wait: a failure shows as a timeout, never as a hang

Step = Callable[[web.Request, web.StreamResponse], Awaitable[None]]
CLIENT = web.AppKey("client", Client)
TIMEOUTS = Timeouts(connect=5, read=5)


@dataclass
class Upstream:
    """A scripted upstream: ``scripts[path]`` is the content type and the steps of a streamed
    answer, ``replies[path]`` the status and body of a plain JSON one."""

    scripts: dict[str, tuple[str, list[Step]]] = field(default_factory=dict)
    replies: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # plain JSON answers
    gates: dict[str, threading.Event] = field(default_factory=dict)
    hung_up: threading.Event = field(default_factory=threading.Event)  # the proxy closed on us
    blocked: threading.Event = field(default_factory=threading.Event)  # a write could not drain
    written: int = 0

    def gate(self, name: str) -> threading.Event:
        return self.gates.setdefault(name, threading.Event())

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            await request.read()
            if request.path in self.replies:
                status, body = self.replies[request.path]
                return web.Response(status=status, body=body, content_type="application/json")
            content_type, steps = self.scripts[request.path]
            response = web.StreamResponse(headers={"Content-Type": content_type})
            await response.prepare(request)
            try:
                for step in steps:
                    await step(request, response)
                await response.write_eof()
            except ConnectionError:
                self.hung_up.set()
            return response

        app = web.Application()
        app.router.add_post("/{path:.*}", handle)
        return app

    # steps ----------------------------------------------------------------------------------------

    def send(self, data: bytes) -> Step:
        async def step(request: web.Request, response: web.StreamResponse) -> None:
            await response.write(data)
            self.written += len(data)

        return step

    def wait_for(self, name: str, keepalive: bytes = b"") -> Step:
        """Write keep-alives (if any) until the test opens gate ``name``; notice the proxy
        hanging up."""
        gate = self.gate(name)

        async def step(request: web.Request, response: web.StreamResponse) -> None:
            while not gate.is_set():
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError
                if keepalive:
                    await response.write(keepalive)
                await asyncio.sleep(0.01)  # the fake server's pace, not a synchronisation

        return step

    def flood(self, frame: bytes, total: int) -> Step:
        """Write ``total`` bytes of frames; note when a write stays stuck on a full pipe."""

        async def step(request: web.Request, response: web.StreamResponse) -> None:
            while self.written < total:
                try:
                    await asyncio.wait_for(response.write(frame), timeout=1.0)
                except TimeoutError:
                    self.blocked.set()
                    raise ConnectionResetError from None  # stop here; the test hangs up next
                self.written += len(frame)

        return step

    def reset(self) -> Step:
        async def step(request: web.Request, response: web.StreamResponse) -> None:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError

        return step


def pipeline_app(upstream_url: str, plans: dict[str, StreamPlan]) -> Callable[[], web.Application]:
    """Just enough of a proxy: forward the body, relay a 200, pass anything else through."""

    def build() -> web.Application:
        async def client_context(app: web.Application) -> AsyncIterator[None]:
            app[CLIENT] = Client(UpstreamResolver())
            yield
            await app[CLIENT].close()

        async def handle(request: web.Request) -> web.StreamResponse:
            url = URL(upstream_url + request.path)
            upstream = await request.app[CLIENT].request(
                "POST", url, {}, await request.read(), TIMEOUTS
            )
            if upstream.status != 200:
                body = await upstream.read()
                upstream.release()
                return web.Response(
                    status=upstream.status, body=body, headers={
                        "Content-Type": upstream.headers.get("Content-Type", "")}
                )  # fmt: skip
            return await relay_stream(request, upstream, plans[request.path])

        app = web.Application()
        app.cleanup_ctx.append(client_context)
        app.router.add_post("/{path:.*}", handle)
        return app

    return build


@dataclass
class Rig:
    upstream: Upstream
    proxy_url: str
    plans: dict[str, StreamPlan]
    outcomes: queue.Queue[StreamOutcome] = field(default_factory=queue.Queue)

    def plan(self, path: str, **fields) -> None:
        fields = {"model": "llama2", "route_type": "llm/v1/chat", **fields}
        self.plans[path] = StreamPlan(on_done=self.outcomes.put, **fields)

    def outcome(self) -> StreamOutcome:
        """What the relay reported; it may report just after the client has read the end."""
        return self.outcomes.get(timeout=WAIT)


@pytest.fixture
def rig() -> Iterator[Rig]:
    upstream = Upstream()
    plans: dict[str, StreamPlan] = {}
    with (
        ThreadedServer(upstream.app) as up,
        ThreadedServer(pipeline_app(up.url, plans)) as proxy,
    ):
        yield Rig(upstream, proxy.url, plans)


def ndjson(value: object) -> bytes:
    return json.dumps(value).encode() + b"\n"


def ollama_line(text: str, done: bool = False) -> bytes:
    line = {"model": "llama2", "message": {"role": "assistant", "content": text}, "done": done}
    if done:
        line |= {"done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2}
    return ndjson(line)


def client_events(chunks: Iterator[bytes]) -> Iterator[str]:
    """The ``data:`` payloads a client reads, as they arrive."""
    decoder = SseDecoder()
    for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.finish():
        yield event


def post(rig: Rig, path: str) -> tuple[int, str, list[str]]:
    response = httpx.post(rig.proxy_url + path, json={}, timeout=WAIT)
    return (
        response.status_code,
        response.headers.get("content-type", ""),
        list(client_events(iter([response.content]))),
    )


def content(payloads: list[str]) -> str:
    text = ""
    for payload in payloads:
        if payload.startswith("{"):
            choice = (json.loads(payload).get("choices") or [{}])[0]
            text += choice.get("delta", {}).get("content") or choice.get("text") or ""
    return text


# --- tests ---------------------------------------------------------------------------------------


def test_each_token_is_relayed_before_the_upstream_sends_the_next(rig: Rig) -> None:
    up = rig.upstream
    up.scripts["/chat"] = (
        "application/x-ndjson",
        [
            up.send(ollama_line("Hel")),
            up.wait_for("rest", b"\n"),
            up.send(ollama_line("lo")),
            up.send(ollama_line("", done=True)),
        ],
    )
    rig.plan("/chat", llama2_format="ollama")
    seen: list[str] = []
    with httpx.stream("POST", rig.proxy_url + "/chat", json={}, timeout=WAIT) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for payload in client_events(response.iter_raw()):
            seen.append(payload)
            if content(seen) == "Hel":
                up.gate("rest").set()  # only now may the upstream go on
    assert content(seen) == "Hello" and seen[-1] == "[DONE]"
    outcome = rig.outcome()
    assert (outcome.finish_reason, outcome.usage.total_tokens) == ("stop", 5)


def test_the_head_goes_out_while_the_first_token_is_awaited(rig: Rig) -> None:
    up = rig.upstream
    up.scripts["/chat"] = (
        "application/x-ndjson",
        [up.wait_for("first"), up.send(ollama_line("Hi")), up.send(ollama_line("", done=True))],
    )
    rig.plan("/chat", llama2_format="ollama")
    # httpx.stream returns once the head has arrived: a head held for the first token would
    # time out here, the upstream waiting for the gate
    with httpx.stream("POST", rig.proxy_url + "/chat", json={}, timeout=WAIT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        up.gate("first").set()
        payloads = list(client_events(response.iter_raw()))
    assert content(payloads) == "Hi" and payloads[-1] == "[DONE]"


def test_a_client_hanging_up_closes_the_upstream_request(rig: Rig) -> None:
    up = rig.upstream
    up.scripts["/chat"] = (
        "text/event-stream",
        [
            up.send(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'),
            up.wait_for("never", b": keep-alive\n\n"),
        ],
    )
    rig.plan("/chat", llama2_format="openai")
    with httpx.stream("POST", rig.proxy_url + "/chat", json={}, timeout=WAIT) as response:
        pieces = response.iter_raw()
        next(pieces)  # the first chunk is here; leaving the block hangs up
    assert up.hung_up.wait(WAIT), "the proxy kept the upstream request open"
    assert rig.outcome().text_length == 1  # reported even though the client left


def test_a_slow_client_holds_the_upstream_back(rig: Rig) -> None:
    up = rig.upstream
    frame = b'data: {"choices":[{"index":0,"delta":{"content":"' + b"z" * 1000 + b'"}}]}\n\n'
    total = 256 << 20  # far more than every socket buffer on the way can hold
    up.scripts["/chat"] = ("text/event-stream", [up.flood(frame, total)])
    rig.plan("/chat", llama2_format="openai")
    with httpx.stream("POST", rig.proxy_url + "/chat", json={}, timeout=WAIT) as response:
        pieces = response.iter_raw()
        next(pieces)  # read one piece, then read nothing more (but stay connected)
        assert up.blocked.wait(WAIT), "the upstream never felt the client's backpressure"
    assert up.written < total // 4  # the proxy did not soak the stream up in memory
    assert up.hung_up.wait(WAIT)


@pytest.mark.parametrize(
    ("fmt", "content_type", "head", "message"),
    [
        ("ollama", "application/x-ndjson", ollama_line("a"), "before its done:true line"),
        ("openai", "text/event-stream", b'data: {"choices":[]}\n\n', "without data: [DONE]"),
        ("raw", "text/event-stream", b'data: {"content":"a","stop":false}\n\n', "final event"),
    ],
)
def test_a_truncated_stream_ends_with_an_error_event(rig, fmt, content_type, head, message):
    up = rig.upstream
    up.scripts["/s"] = (content_type, [up.send(head)])
    rig.plan("/s", llama2_format=fmt)
    status, media, payloads = post(rig, "/s")
    assert (status, media.split(";")[0]) == (200, "text/event-stream")
    assert payloads[-1] == "[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert message in error["message"] and error["type"] == "upstream_incomplete_stream"
    assert rig.outcome().finish_reason is None


def test_a_reset_upstream_ends_with_an_error_event(rig: Rig) -> None:
    up = rig.upstream
    up.scripts["/chat"] = ("application/x-ndjson", [up.send(ollama_line("a")), up.reset()])
    rig.plan("/chat", llama2_format="ollama")
    status, _, payloads = post(rig, "/chat")
    assert status == 200 and content(payloads) == "a" and payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["type"] in (
        "upstream_connection_error",
        "upstream_incomplete_stream",
    )


def test_an_error_line_mid_stream_becomes_an_error_event(rig: Rig) -> None:
    up = rig.upstream
    up.scripts["/chat"] = (
        "application/x-ndjson",
        [up.send(ollama_line("a")), up.send(ndjson({"error": "boom"}))],
    )
    rig.plan("/chat", llama2_format="ollama")
    _, _, payloads = post(rig, "/chat")
    assert json.loads(payloads[-2]) == {"error": {"message": "boom", "type": "upstream_error"}}
    assert payloads[-1] == "[DONE]"


def test_a_json_answer_becomes_a_short_stream(rig: Rig) -> None:
    reply = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2},
    }
    rig.upstream.replies["/chat"] = (200, json.dumps({"upstream": reply}).encode())

    def decode(body: bytes) -> dict:
        return json.loads(body)["upstream"]

    rig.plan(
        "/chat",
        llama2_format="raw",
        include_usage=True,
        decode_json=decode,
        headers_to_add={"X-Kong-LLM-Model": "llama2/llama2"},
    )
    response = httpx.post(rig.proxy_url + "/chat", json={}, timeout=WAIT)
    payloads = list(client_events(iter([response.content])))
    assert response.headers["x-kong-llm-model"] == "llama2/llama2"
    assert content(payloads) == "Hi there" and payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["usage"]["total_tokens"] == 4


def test_an_untransformable_json_answer_is_a_json_500(rig: Rig) -> None:
    rig.upstream.replies["/chat"] = (200, b"{}")

    def decode(body: bytes) -> dict:
        raise ValueError("transformation failed from type llama2://llm/v1/chat: no data")

    rig.plan("/chat", llama2_format="raw", decode_json=decode)
    response = httpx.post(rig.proxy_url + "/chat", json={}, timeout=WAIT)
    assert response.status_code == 500
    assert response.json() == {
        "error": {"message": "transformation failed from type llama2://llm/v1/chat: no data"}
    }


def test_an_unexpected_content_type_is_reported_in_the_stream(rig: Rig) -> None:
    rig.upstream.scripts["/chat"] = ("text/html", [rig.upstream.send(b"<html>")])
    rig.plan("/chat", llama2_format="ollama")
    _, _, payloads = post(rig, "/chat")
    assert "text/html" in json.loads(payloads[0])["error"]["message"]
    assert payloads[-1] == "[DONE]"


def test_kong_compat_raw_stream_is_an_empty_200(rig: Rig) -> None:
    up = rig.upstream
    up.scripts["/raw"] = ("text/event-stream", [up.send(b'data: {"content":"a","stop":true}\n\n')])
    rig.plan("/raw", llama2_format="raw", kong_compat=True)
    response = httpx.post(rig.proxy_url + "/raw", json={}, timeout=WAIT)
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"].startswith("text/event-stream")


def test_kong_compat_unsupported_content_type_frame(rig: Rig) -> None:
    rig.upstream.scripts["/chat"] = ("application/json", [rig.upstream.send(b"{}")])
    rig.plan("/chat", llama2_format="ollama", kong_compat=True)
    response = httpx.post(rig.proxy_url + "/chat", json={}, timeout=WAIT)
    assert response.content == (
        b'data: {"error": true, "message": "empty or unsupported transformer response"}'
    )
