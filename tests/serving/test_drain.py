"""SIGTERM and Ctrl-C in the foreground runner (``proxyproof proxy``, ``proxyproof mock``):
no new connections, requests in flight finish within the grace period, then exit 0.

Each server is its own process (conftest.serve). A request is held in flight by its body:
the server answers ``started`` at once and ``finished`` once the test sends the body."""

import signal
import socket
import time

import pytest

HOLD = b"POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"


def _read_until(connection: socket.socket, marker: bytes) -> bytes:
    received = b""
    connection.settimeout(10)
    while marker not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before {marker!r}: {received!r}"
        received += chunk
    return received


def _until_closed(connection: socket.socket) -> bytes:
    connection.settimeout(10)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def _hold(address: tuple[str, int]) -> socket.socket:
    connection = socket.create_connection(address, timeout=10)
    connection.sendall(HOLD)
    assert _read_until(connection, b"started\n").startswith(b"HTTP/1.1 200 ")
    return connection


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections(serve):
    served = serve("--grace", "10")
    idle = socket.create_connection(served.address, timeout=10)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _read_until(idle, b"ok")  # answered, and kept alive
    with _hold(served.address) as held:
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert "10 s to finish" in served.stderr_line("stopping:")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(served.address, timeout=10)
        assert _until_closed(idle) == b""  # an idle connection is closed at once
        held.sendall(b"x")  # the body: the handler finishes
        rest = _until_closed(held)
    assert b"finished\n" in rest and rest.endswith(b"0\r\n\r\n")  # the whole chunked answer
    assert served.process.wait(timeout=10) == 0
    assert time.monotonic() - signalled < 10
    idle.close()
    assert "Traceback" not in served.process.stderr.read()


def test_a_request_that_outlasts_the_grace_is_ended_and_the_process_exits_0(serve):
    served = serve("--grace", "0.5")
    with _hold(served.address) as held:
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        rest = _until_closed(held)  # the body never comes
        assert served.process.wait(timeout=10) == 0
        assert 0.4 <= time.monotonic() - signalled < 0.5 + 3
    assert b"finished" not in rest and not rest.endswith(b"0\r\n\r\n")  # cut, not completed
    assert "Traceback" not in served.process.stderr.read()


def test_a_second_signal_ends_the_requests_in_flight_at_once(serve):
    served = serve("--grace", "60")
    with _hold(served.address) as held:
        served.process.send_signal(signal.SIGINT)
        served.stderr_line("stopping:")
        served.process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        assert b"finished" not in _until_closed(held)
        assert served.process.wait(timeout=10) == 0
        assert time.monotonic() - signalled < 3


def test_proxy_command_takes_the_connection_flags_and_drains_on_sigterm(serve):
    served = serve("-m", "proxyproof", "proxy", "--example", "ollama", "--port", "0",
                   "--header-timeout", "0.3", "--max-connections", "1", "--grace", "1")
    with socket.create_connection(served.address, timeout=10) as first, \
            socket.create_connection(served.address, timeout=10) as second:
        assert _until_closed(second).startswith(b"HTTP/1.1 503 ")  # over --max-connections
        started = time.monotonic()
        assert _until_closed(first) == b""  # silent: closed at --header-timeout
        assert time.monotonic() - started < 3
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=10) == 0
