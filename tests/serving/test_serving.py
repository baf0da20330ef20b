"""The shared server runner: ephemeral ports, clean stops, no credentials in its logs."""

import asyncio
import logging
import socket

import httpx
from aiohttp import web

from proxyproof.serving import AsyncServer, ThreadedServer


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
