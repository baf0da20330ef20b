"""The proxy's upstream HTTP/1.1 client against servers that answer with exact bytes: keep-alive
reuse, every way a body can be framed and compressed, and every way an upstream can fail."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from yarl import URL

from proxyproof.proxy_impl.http_client import (
    HIGH_WATER,
    BadResponse,
    Client,
    ConnectFailed,
    ConnectionBroken,
    ResponseTimeout,
    Timeouts,
)
from proxyproof.proxy_impl.resolver import UpstreamResolver

TIMEOUTS = Timeouts(connect=2, read=2)
Answer = Callable[[bytes], bytes | None]  # the request's bytes -> what to send (None: hang up)


def reply(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


def ok(body: bytes, **headers: str) -> bytes:
    return reply("200 OK", {"Content-Length": str(len(body)), **headers}, body)


@asynccontextmanager
async def upstream(answer: Answer) -> AsyncIterator[tuple[URL, list[bytes], list[int]]]:
    """A server writing ``answer(request)`` for each request; yields its URL, the requests it
    read and, per connection, how many requests it served."""
    requests: list[bytes] = []
    per_connection: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        per_connection.append(0)
        index = len(per_connection) - 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                request = head + await reader.readexactly(length)
                requests.append(request)
                per_connection[index] += 1
                data = answer(request)
                if data is None:
                    writer.transport.abort()
                    return
                writer.write(data)
                await writer.drain()
                if b"\r\nConnection: close\r\n" in data:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield URL(f"http://127.0.0.1:{port}/api/chat"), requests, per_connection
    finally:
        server.close()


Results = tuple[list[tuple[int, bytes]], list[bytes], list[int]]


async def call(url: URL, answer: Answer, times: int = 1, method: str = "POST",
               timeouts: Timeouts = TIMEOUTS) -> Results:  # fmt: skip
    client = Client(UpstreamResolver())
    results = []
    try:
        async with upstream(answer) as (base, requests, per_connection):
            for _ in range(times):
                response = await client.request(method, base.with_path(url.path).with_query(
                    url.query), {"Content-Type": "application/json"}, b'{"a":1}', timeouts)
                async with response:
                    results.append((response.status, await response.read()))
    finally:
        await client.close()
    return results, requests, per_connection


def run(*args: object, **kwargs: object) -> Results:
    return asyncio.run(call(*args, **kwargs))  # type: ignore[arg-type]


def test_one_send_carries_host_length_and_body_and_the_connection_is_kept() -> None:
    results, requests, per_connection = run(URL("/api/chat?x=1"), lambda _: ok(b"{}"), times=3)
    assert results == [(200, b"{}")] * 3
    assert per_connection == [3]  # one connection, kept alive
    head, body = requests[0].split(b"\r\n\r\n")
    assert head.startswith(b"POST /api/chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nContent-Length: 7" in head and body == b'{"a":1}'


def test_a_connection_paused_by_a_big_body_reads_again_once_kept() -> None:
    # the whole body arrives before the caller reads it: the connection stops reading past
    # HIGH_WATER, and must read again when it goes back to the pool for the next request
    body = b"x" * (4 * HIGH_WATER)
    results, _, per_connection = run(URL("/api/chat"), lambda _: ok(body), times=2)
    assert results == [(200, body)] * 2
    assert per_connection == [2]


@pytest.mark.parametrize("coding, squeeze", [
    ("gzip", gzip.compress), ("deflate", zlib.compress), ("x-gzip", gzip.compress)])
def test_compressed_bodies_arrive_inflated(coding: str, squeeze: Callable[[bytes], bytes]) -> None:
    text = b'{"message": "hi"}' * 100
    results, _, _ = run(URL("/"), lambda _: ok(squeeze(text), **{"Content-Encoding": coding}))
    assert results == [(200, text)]


def test_a_chunked_body_is_reassembled() -> None:
    chunked = reply("200 OK", {"Transfer-Encoding": "chunked"}, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    results, _, per_connection = run(URL("/"), lambda _: chunked, times=2)
    assert results == [(200, b"abcde")] * 2 and per_connection == [2]


def test_a_body_without_length_ends_with_the_connection() -> None:
    closing = reply("200 OK", {"Connection": "close"}, b"until the end")
    results, _, per_connection = run(URL("/"), lambda _: closing, times=2)
    assert results == [(200, b"until the end")] * 2 and per_connection == [1, 1]


def test_an_informational_response_is_skipped() -> None:
    results, _, _ = run(URL("/"), lambda _: reply("100 Continue", {}) + ok(b"{}"))
    assert results == [(200, b"{}")]


def test_a_response_to_head_has_no_body_whatever_its_length_says() -> None:
    results, _, _ = run(URL("/"), lambda _: reply("200 OK", {"Content-Length": "99"}),
                        method="HEAD", times=2)  # fmt: skip
    assert results == [(200, b"")] * 2


def test_a_head_that_does_not_parse_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        run(URL("/"), lambda _: b"HTTP/1.1 abc nonsense\r\n\r\n")


def test_a_reset_before_the_answer_is_a_broken_connection() -> None:
    with pytest.raises(ConnectionBroken):
        run(URL("/"), lambda _: None)


def test_a_body_cut_short_is_a_broken_connection() -> None:
    def cut(_: bytes) -> bytes:
        return reply("200 OK", {"Content-Length": "100", "Connection": "close"}, b"only this")

    async def read_it() -> None:
        client = Client(UpstreamResolver())
        async with upstream(cut) as (url, _, _):
            response = await client.request("POST", url, {}, b"", TIMEOUTS)
            with pytest.raises(ConnectionBroken):
                await response.read()
        await client.close()

    asyncio.run(read_it())


def test_a_silent_upstream_times_out() -> None:
    with pytest.raises(ResponseTimeout):
        run(URL("/"), lambda _: b"", timeouts=Timeouts(connect=2, read=0.05))


def test_a_closed_port_is_refused_and_a_reserved_name_never_resolves() -> None:
    async def connect(url: str) -> None:
        await Client(UpstreamResolver()).request("POST", URL(url), {}, b"", TIMEOUTS)

    with pytest.raises(ConnectFailed) as refused:
        asyncio.run(connect("http://127.0.0.1:9/"))
    with pytest.raises(ConnectFailed) as unresolved:
        asyncio.run(connect("http://upstream.invalid/"))
    assert (refused.value.kind, unresolved.value.kind) == ("refused", "dns")


def test_a_header_with_a_line_break_is_never_sent() -> None:
    async def send() -> None:
        client = Client(UpstreamResolver())
        async with upstream(lambda _: ok(b"")) as (url, requests, _):
            with pytest.raises(ValueError, match="line break"):
                await client.request("POST", url, {"X-A": "1\r\nX-Smuggled: 2"}, b"", TIMEOUTS)
            assert requests == []
        await client.close()

    asyncio.run(send())


def test_a_shorter_read_timeout_on_a_reused_connection_is_kept() -> None:
    """A connection kept from an exchange with a long read timeout serves one with a short
    one: the short one still ends on time."""
    answers = iter([ok(b"{}"), b""])  # the second request is never answered

    async def two() -> None:
        client = Client(UpstreamResolver())
        async with upstream(lambda _: next(answers)) as (url, _, per_connection):
            first = await client.request("POST", url, {}, b"", Timeouts(connect=2, read=60))
            assert await first.read() == b"{}"
            with pytest.raises(ResponseTimeout):
                await asyncio.wait_for(
                    client.request("POST", url, {}, b"", Timeouts(connect=2, read=0.05)), 5)
            assert per_connection == [2]
        await client.close()

    asyncio.run(two())


def test_a_request_cancelled_before_its_answer_leaves_no_connection_behind() -> None:
    async def cancel() -> None:
        client = Client(UpstreamResolver())
        arrived = asyncio.Event()

        def never_answer(_: bytes) -> bytes:
            arrived.set()
            return b""

        async with upstream(never_answer) as (url, _, _):
            call = asyncio.ensure_future(client.request("POST", url, {}, b"", TIMEOUTS))
            await arrived.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            for _ in range(100):  # connection_lost comes a turn of the loop or two later
                if not client._open:
                    break
                await asyncio.sleep(0)
            assert client._open == set() and client._idle == {}
        await client.close()

    asyncio.run(cancel())


def test_a_connection_idle_too_long_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("proxyproof.proxy_impl.http_client.KEEPALIVE_SECONDS", 0.0)
    results, _, per_connection = run(URL("/"), lambda _: ok(b"{}"), times=2)
    assert results == [(200, b"{}")] * 2 and per_connection == [1, 1]


def test_past_the_limit_a_request_waits_for_an_exchange_to_end() -> None:
    """With one slot, the second request goes out only once the first exchange has ended (here:
    its half-sent body given up), and an exchange that failed frees its slot too."""
    half = reply("200 OK", {"Content-Length": "10"}, b"half")
    answers = iter([None, half, ok(b"second")])  # a reset, a body that stops, an answer

    async def limited() -> None:
        client = Client(UpstreamResolver(), limit=1)
        async with upstream(lambda _: next(answers)) as (url, requests, _):
            with pytest.raises(ConnectionBroken):
                await client.request("POST", url, {}, b"", TIMEOUTS)
            first = await client.request("POST", url, {}, b"", TIMEOUTS)
            second = asyncio.ensure_future(client.request("POST", url, {}, b"", TIMEOUTS))
            for _ in range(100):  # the second request would have gone out by now
                await asyncio.sleep(0)
            assert len(requests) == 2 and not second.done()  # waiting for the slot
            first.release()  # its body is still coming: the connection closes, the slot frees
            assert await (await second).read() == b"second"
            assert len(requests) == 3
        await client.close()

    asyncio.run(limited())
