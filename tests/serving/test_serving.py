"""The shared server runner: ephemeral ports, clean stops, no credentials in its logs."""

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from aiohttp import web

from proxyproof.serving import ONLY_HANDLER, AsyncServer, ThreadedServer, event_loop_name


def _hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/", hello)
    return app


def test_threaded_server_serves_on_an_ephemeral_port_and_stops():
    with ThreadedServer(_hello_app) as server:
        assert httpx.get(server.url).json() == {"hello": "world"}
        port = int(server.url.rsplit(":", 1)[1])
    with socket.socket() as probe:  # the port is free again once the server stopped
        probe.bind(("127.0.0.1", port))


def test_async_server_runs_in_the_callers_loop():
    async def main() -> int:
        async with AsyncServer(_hello_app) as server:
            reader, writer = await asyncio.open_connection(*server.url[7:].split(":"))
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status = int((await reader.readline()).split()[1])
            writer.close()
            return status

    assert asyncio.run(main()) == 200


def test_a_malformed_request_is_logged_without_its_headers(caplog):
    secret = "sk-very-secret-value"
    with ThreadedServer(_hello_app) as server, caplog.at_level(logging.DEBUG):
        host, port = server.url[7:].split(":")
        with socket.create_connection((host, int(port))) as connection:
            connection.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + secret.encode() + b"\x01\r\n\r\n"
            )
            answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.")
    assert b" 400 " in answer.split(b"\r\n", 1)[0]
    assert any(r.name == "proxyproof.http" for r in caplog.records)
    assert secret not in caplog.text


@pytest.mark.parametrize("value, loop", [(None, "uvloop"), ("", "uvloop"), ("asyncio", "asyncio"),
                                         (" UVLOOP ", "uvloop")])
def test_the_event_loop_is_uvloop_unless_asyncio_is_asked_for(monkeypatch, value, loop):
    if value is None:
        monkeypatch.delenv("PROXYPROOF_LOOP", raising=False)
    else:
        monkeypatch.setenv("PROXYPROOF_LOOP", value)
    assert event_loop_name() == loop


@pytest.mark.parametrize("value, uvloop_installed, message", [
    ("uvlop", True, "PROXYPROOF_LOOP must be uvloop or asyncio, not 'uvlop'"),
    ("uvloop", False, "PROXYPROOF_LOOP=uvloop, but uvloop is not installed (pip install uvloop)"),
])
def test_a_loop_that_cannot_be_had_is_an_error(monkeypatch, value, uvloop_installed, message):
    monkeypatch.setenv("PROXYPROOF_LOOP", value)
    if not uvloop_installed:
        monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop: ImportError
    with pytest.raises(ValueError) as raised:
        event_loop_name()
    assert str(raised.value) == message
    if uvloop_installed:  # and from the command line, one line before anything starts
        done = subprocess.run([sys.executable, "-m", "proxyproof", "proxy", "--example", "ollama",
                               "--port", "0"], env={**os.environ, "PROXYPROOF_LOOP": value},
                              capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == f"proxyproof proxy: {message}\n"


def _proxy_apps() -> dict[str, Callable[[], web.Application]]:
    from proxyproof.harness import kong_config
    from proxyproof.harness.hostings import HOSTINGS
    from proxyproof.proxy_impl import proxy_app
    from proxyproof.proxy_impl.admin import live_proxy_app

    example = kong_config.load(HOSTINGS[0].example)
    return {"direct": lambda: proxy_app(example), "with-middleware": lambda: live_proxy_app(None)}


@pytest.mark.parametrize("kind", ["direct", "with-middleware"])
def test_the_proxy_answers_expect_whichever_way_it_is_dispatched(kind):
    """proxy_app names its one handler (ONLY_HANDLER), so its server skips aiohttp's router; an
    app with middlewares (the proxy with its Admin API) keeps aiohttp's dispatch. Either way a
    client that sends Expect: 100-continue gets its go-ahead, and an unknown expectation a 417."""
    body = b'{"messages": []}'
    with ThreadedServer(_proxy_apps()[kind]) as server:
        running = server._running
        assert running is not None and running.runner.server is not None
        direct = running.runner.server.request_handler is running.app.get(ONLY_HANDLER)
        assert direct == (kind == "direct")
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as client:
            client.sendall(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                           b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            answer = client.recv(65536)  # the go-ahead comes before the body is sent
            assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            client.sendall(body)
            while b"no Route matched" not in answer:  # (a 404 needs no body: it may come at once)
                answer += client.recv(65536)
        assert answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n").startswith(b"HTTP/1.1 404 ")
        refused = httpx.post(server.url + "/nowhere", content=body, headers={"Expect": "x-y"})
        assert refused.status_code == 417 and refused.text == "Unknown Expect: x-y"
