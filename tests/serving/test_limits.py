"""Hostile clients at the connection level: slow headers, idle keep-alive, bodies that never
finish, more connections than the server takes, and accept() running out of descriptors.

Real sockets on ephemeral ports, short limits; every wait is a read with a timeout."""

import asyncio
import errno
import gzip
import http.client
import json
import logging
import select
import socket
import time

import pytest
from aiohttp import web

from proxyproof import serving
from proxyproof.proxy_impl import proxy_app
from proxyproof.serving import ConnectionLimits, ThreadedServer, connection_cap

EXAMPLE = serving.__file__.rsplit("/", 2)[0] + "/fixtures/examples/ollama.yaml"
SHORT = 0.3  # seconds: the limit under test
LONG = 10.0  # seconds: the limits not under test


def _app(**arguments: object) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    app = web.Application(**arguments)
    app.router.add_get("/", hello)
    app.router.add_post("/echo", echo)
    return app


def _limits(**short: float) -> ConnectionLimits:
    values = {"header_timeout": LONG, "body_timeout": LONG, "keepalive_timeout": LONG}
    return ConnectionLimits(**{**values, **short})


def _address(url: str) -> tuple[str, int]:
    host, port = url[7:].split(":")
    return host, int(port)


def _connect(url: str) -> socket.socket:
    return socket.create_connection(_address(url), timeout=5)


def _until_closed(connection: socket.socket, limit: float = 5.0) -> bytes:
    """Everything the server sends until it closes (a reset counts as closing)."""
    connection.settimeout(limit)
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def _trickle(connection: socket.socket, data: bytes, pace: float = 0.05) -> None:
    """Send ``data`` a byte at a time, ``pace`` apart, until the server answers or closes."""
    for byte in data:
        try:
            connection.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return
        readable, _, _ = select.select([connection], [], [], pace)
        if readable:
            return


def _status_and_json(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), head


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in caplog.text


def test_a_client_that_sends_nothing_is_closed_after_the_header_timeout(caplog):
    with ThreadedServer(_app, limits=_limits(header_timeout=SHORT)) as server, \
            _connect(server.url) as connection:
        started = time.monotonic()
        assert _until_closed(connection) == b""  # nothing was asked: nothing is answered
        assert SHORT * 0.8 <= time.monotonic() - started < SHORT + 3
    _no_tracebacks(caplog)


def test_headers_sent_a_byte_at_a_time_get_408_at_the_header_timeout(caplog):
    with ThreadedServer(_app, limits=_limits(header_timeout=SHORT)) as server, \
            _connect(server.url) as connection:
        started = time.monotonic()
        # 60 bytes, 50 ms apart: 3 s if the server let each byte restart the clock
        _trickle(connection, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n")
        status, body, head = _status_and_json(_until_closed(connection))
        # under the 3.3 s a clock restarted by each byte would take; room for a loaded machine
        assert SHORT * 0.8 <= time.monotonic() - started < SHORT + 2.5
    assert status == 408 and body == {"message": "request headers timed out"}
    assert b"Connection: close" in head
    _no_tracebacks(caplog)


def test_the_next_request_on_a_kept_alive_connection_has_the_header_timeout_too():
    limits = _limits(header_timeout=SHORT)  # keep-alive: LONG
    with ThreadedServer(_app, limits=limits) as server:
        client = http.client.HTTPConnection(*_address(server.url), timeout=5)
        client.request("GET", "/")
        assert client.getresponse().read() == b'{"hello": "world"}'
        started = time.monotonic()
        client.sock.sendall(b"GET / HTTP/1.1\r\n")  # and no more
        status, body, _ = _status_and_json(_until_closed(client.sock))
        assert SHORT * 0.8 <= time.monotonic() - started < SHORT + 3
        client.close()
    assert status == 408 and body == {"message": "request headers timed out"}


def test_an_idle_keep_alive_connection_is_closed(caplog):
    with ThreadedServer(_app, limits=_limits(keepalive_timeout=SHORT)) as server:
        client = http.client.HTTPConnection(*_address(server.url), timeout=5)
        for _ in range(2):  # kept alive between requests that come in time
            client.request("GET", "/")
            response = client.getresponse()
            assert response.status == 200 and not response.will_close
            response.read()
        started = time.monotonic()
        assert _until_closed(client.sock) == b""
        assert SHORT * 0.8 <= time.monotonic() - started < SHORT + 3
        client.close()
    _no_tracebacks(caplog)


@pytest.mark.parametrize("app, path", [(_app, "/echo"),
                                       (lambda: proxy_app(EXAMPLE), "/llama2-chat")],
                         ids=["plain-app", "reference-proxy"])
def test_a_body_that_never_finishes_gets_408_at_the_body_timeout(caplog, app, path):
    with ThreadedServer(app, limits=_limits(body_timeout=SHORT)) as server, \
            _connect(server.url) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                           "\r\nContent-Length: 1000\r\n\r\n".encode())
        started = time.monotonic()
        _trickle(connection, b'{"messages": [' + b" " * 900)  # a trickle does not reset it
        status, body, head = _status_and_json(_until_closed(connection))
        assert SHORT * 0.8 <= time.monotonic() - started < SHORT + 3
    assert status == 408 and body == {"message": "request body timed out"}
    assert b"Connection: close" in head
    _no_tracebacks(caplog)


def test_a_body_that_arrives_in_time_is_read_whole():
    with ThreadedServer(_app, limits=_limits(body_timeout=2.0)) as server:
        client = http.client.HTTPConnection(*_address(server.url), timeout=5)
        client.request("POST", "/echo", body=b"x" * 200_000)
        assert client.getresponse().read() == b"x" * 200_000
        client.close()


def test_the_applications_handler_args_still_reach_its_connections():
    packed = gzip.compress(b'{"a": 1}')
    with ThreadedServer(lambda: _app(handler_args={"auto_decompress": False})) as server:
        client = http.client.HTTPConnection(*_address(server.url), timeout=5)
        client.request("POST", "/echo", body=packed, headers={"Content-Encoding": "gzip"})
        assert client.getresponse().read() == packed  # not inflated
        client.close()


def test_connections_beyond_the_cap_get_503_json_and_the_server_goes_on(caplog):
    with ThreadedServer(_app, limits=_limits(max_connections=3)) as server:
        held = [http.client.HTTPConnection(*_address(server.url), timeout=5) for _ in range(3)]
        for client in held:  # each answered, so each is counted before the next connects
            client.request("GET", "/")
            assert client.getresponse().read() == b'{"hello": "world"}'
        with _connect(server.url) as fourth:
            fourth.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, body, head = _status_and_json(_until_closed(fourth))
        assert status == 503 and body == {"message": "too many connections"}
        assert b"Connection: close" in head
        for client in held:  # still served
            client.request("GET", "/")
            assert client.getresponse().status == 200
            client.close()
        deadline = time.monotonic() + 5  # the server sees the closes in its own time
        while True:
            with _connect(server.url) as again:
                again.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = _until_closed(again)
            if b" 200 " in answer.split(b"\r\n", 1)[0] or time.monotonic() > deadline:
                break
            select.select([], [], [], 0.05)
        assert answer.startswith(b"HTTP/1.1 200 ")
    _no_tracebacks(caplog)


def test_a_burst_of_connections_is_counted_as_it_is_accepted():
    limits = _limits(max_connections=3, header_timeout=SHORT)
    with ThreadedServer(_app, limits=limits) as server:
        burst = [_connect(server.url) for _ in range(10)]  # all in the backlog at once
        answers = [_until_closed(connection) for connection in burst]
        for connection in burst:
            connection.close()
    refused = [answer for answer in answers if answer.startswith(b"HTTP/1.1 503 ")]
    assert len(refused) == 7
    assert answers.count(b"") == 3  # taken, then closed silently at the header timeout


def test_the_cap_leaves_room_under_the_open_file_limit(monkeypatch):
    monkeypatch.setattr(serving.resource, "getrlimit", lambda which: (1024, 4096))
    assert connection_cap(5000) == 1024 - 341
    assert connection_cap(10) == 10
    monkeypatch.setattr(serving.resource, "getrlimit", lambda which: (32, 4096))
    assert connection_cap(1024) == 1
    monkeypatch.setattr(serving.resource, "getrlimit",
                        lambda which: (serving.resource.RLIM_INFINITY,) * 2)
    assert connection_cap(1024) == 1024


def test_limits_refuse_nonsense():
    for bad in ({"header_timeout": 0}, {"body_timeout": -1}, {"keepalive_timeout": float("inf")},
                {"max_connections": 0}):
        with pytest.raises(ValueError):
            ConnectionLimits(**bad)


def test_accept_out_of_descriptors_is_one_line_not_a_traceback_per_retry(caplog):
    """asyncio reports each failed accept() to the loop's exception handler and retries every
    second: the servers' loops say it once per interval, without a traceback."""

    async def main() -> list[str]:
        async with serving.AsyncServer(_app):
            loop = asyncio.get_running_loop()
            for _ in range(5):
                loop.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(errno.EMFILE, "Too many open files"),
                })
            loop.call_exception_handler({"message": "something else"})  # passed on as before
        return [r.getMessage() for r in caplog.records]

    with caplog.at_level(logging.ERROR):
        messages = asyncio.run(main())
    accept = [m for m in messages if "cannot accept" in m]
    assert accept == ["cannot accept a connection: EMFILE Too many open files "
                      "(retrying every second)"]
    assert "something else" in messages
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_server_out_of_descriptors_says_so_once_and_recovers(serve, monkeypatch, loop):
    """A real EMFILE: the server may open 4 more descriptors, 12 clients connect at once. It
    takes 4, fails to accept the rest, closes the 4 at the header timeout, takes 4 more when
    asyncio retries (every second), and so on: several failed accepts, one line. libuv retries
    by itself and does not tell the application: on uvloop the server recovers silently."""
    monkeypatch.setenv("PROXYPROOF_LOOP", loop)
    served = serve("--spare-files", "4", "--header-timeout", "0.3", "--grace", "0")
    clients = [socket.create_connection(served.address, timeout=10) for _ in range(12)]
    for client in clients:  # each taken in turn, then closed silently at the header timeout
        assert _until_closed(client, limit=10) == b""
        client.close()
    with socket.create_connection(served.address, timeout=10) as again:
        again.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _until_closed(again).startswith(b"HTTP/1.1 200 ")
    served.process.terminate()
    assert served.process.wait(timeout=10) == 0
    errors = served.process.stderr.read()
    assert "Traceback" not in errors
    lines = [line for line in errors.splitlines() if "cannot accept" in line]
    said = ["cannot accept a connection: EMFILE Too many open files (retrying every second)"]
    assert lines == (said if loop == "asyncio" else []), errors
