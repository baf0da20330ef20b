"""The serving pipeline: routing, HEAD, 404/405, API keys, handler failures, logging, running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxyproof.mocks import app as mock_app
from proxyproof.mocks.app import run_mock
from proxyproof.mocks.base import BytesReply, Call, Endpoint, JsonReply, MockKind, Reply, sse_frame
from proxyproof.mocks.endpoint_table import EndpointTable

CHAT = {"model": "llama2", "messages": [{"role": "user", "content": "hi"}]}
ROOT = Path(__file__).resolve().parents[2]


def _error(status: int, message: str) -> Reply:
    return JsonReply(status, {"problem": message, "status": status})


def _boom(call: Call) -> Reply:
    raise RuntimeError("kaboom")


def _not_a_reply(call: Call) -> Reply:
    return {"oops": True}  # type: ignore[return-value]


def _echo(call: Call) -> Reply:
    return JsonReply(200, {"match": dict(call.match_info), "method": call.method})


def _public(call: Call) -> Reply:
    return BytesReply(200, b"public text")


TEST_KIND = MockKind(
    name="openai",
    default_port=0,
    endpoints=(
        Endpoint("GET", "/boom", _boom),
        Endpoint("GET", "/odd", _not_a_reply),
        Endpoint("GET", "/items/{item_id:.+}", _echo),
        Endpoint("DELETE", "/items/{item_id:.+}", _echo),
        Endpoint("GET", "/public", _public, public=True),
    ),
    unauthorized=lambda call: _error(401, "who are you"),
    not_found=lambda call: _error(404, f"no {call.path}"),
    error=_error,
    loading=lambda call, seconds: _error(503, "loading"),
    stream_error=lambda message: sse_frame({"error": message}),
)


@pytest.fixture
def custom(monkeypatch: pytest.MonkeyPatch) -> Iterator[mock_app.RunningMock]:
    monkeypatch.setattr(mock_app, "kind", lambda name: TEST_KIND)
    with run_mock("openai", api_key="the-key") as server:
        yield server


def test_route_table_matches_static_and_pattern_paths() -> None:
    table = EndpointTable(TEST_KIND.endpoints)
    assert table.resolve("/nowhere") is None
    methods, info = table.resolve("/boom")  # type: ignore[misc]
    assert set(methods) == {"GET"} and info == {}
    methods, info = table.resolve("/items/meta-llama/Llama-2-7b")  # type: ignore[misc]
    assert set(methods) == {"GET", "DELETE"} and info == {"item_id": "meta-llama/Llama-2-7b"}
    assert table.resolve("/items/") is None
    plain = EndpointTable((Endpoint("GET", "/v1/models/{model}", _echo),))
    assert plain.resolve("/v1/models/a/b") is None
    assert plain.resolve("/v1/models/a")[1] == {"model": "a"}  # type: ignore[index]


def test_handler_failures_never_leak_a_traceback(custom: mock_app.RunningMock) -> None:
    auth = {"Authorization": "Bearer the-key"}
    boom = httpx.get(custom.url + "/boom", headers=auth)
    assert boom.status_code == 500
    assert boom.json() == {"problem": "mock internal error: RuntimeError: kaboom", "status": 500}
    odd = httpx.get(custom.url + "/odd", headers=auth)
    assert odd.status_code == 500 and "not a Reply" in odd.json()["problem"]
    assert custom.control.journal()[0]["status"] == 500


def test_unknown_paths_wrong_methods_and_head(custom: mock_app.RunningMock) -> None:
    auth = {"Authorization": "Bearer the-key"}
    missing = httpx.get(custom.url + "/missing", headers=auth)
    assert (missing.status_code, missing.json()["problem"]) == (404, "no /missing")
    wrong = httpx.post(custom.url + "/items/x", headers=auth)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "DELETE, GET, HEAD"
    assert wrong.json()["status"] == 405
    got = httpx.get(custom.url + "/items/a/b", headers=auth)
    assert got.json() == {"match": {"item_id": "a/b"}, "method": "GET"}
    head = httpx.head(custom.url + "/items/a/b", headers=auth)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_api_keys(custom: mock_app.RunningMock) -> None:
    url = custom.url + "/items/1"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).json()["problem"] == (
        "who are you"
    )
    assert httpx.get(url, headers={"Authorization": "Basic the-key"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "bearer the-key"}).status_code == 200
    assert httpx.get(url, headers={"X-Api-Key": "the-key"}).status_code == 401  # llama.cpp only
    assert httpx.get(custom.url + "/public").text == "public text"


def test_llamacpp_also_reads_x_api_key() -> None:
    with run_mock("llamacpp", api_key="lk") as server:
        url = server.url + "/v1/chat/completions"
        assert httpx.post(url, json=CHAT).status_code == 401
        assert httpx.post(url, json=CHAT, headers={"X-Api-Key": "lk"}).status_code == 200
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer lk"}).status_code == 200
        assert httpx.get(server.url + "/v1/models").status_code == 200  # public there


def test_one_log_line_per_request_without_secrets() -> None:
    lines: list[str] = []
    with run_mock("openai", api_key="top-secret", log=lines.append) as server:
        httpx.post(
            server.url + "/v1/chat/completions?api_key=top-secret",
            json=CHAT,
            headers={"Authorization": "Bearer top-secret"},
        )
        httpx.get(server.url + "/v1/models")
        server.control.fault("reset_before_headers", times=1)
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url + "/v1/models")
        server.control.wait(3)
    mock_lines = [line for line in lines if "/__mock__" not in line]
    assert len(mock_lines) == 3
    assert mock_lines[0].startswith("openai POST /v1/chat/completions 200 ")
    assert mock_lines[0].endswith("ms")
    assert mock_lines[1].startswith("openai GET /v1/models 401 ")
    assert mock_lines[2].startswith("openai GET /v1/models - ") and mock_lines[2].endswith(" reset")
    assert not any("top-secret" in line for line in lines)


def test_run_mock_settings() -> None:
    with run_mock("openai", models="mistral") as server:
        assert server.settings.models == ("mistral",)
        assert server.kind.name == "openai" and repr(server).startswith("<RunningMock openai")
        assert httpx.get(server.url + "/v1/models").json()["data"][0]["id"] == "mistral"
    with pytest.raises(ValueError):
        run_mock("openai", latency=-1)
    with pytest.raises(ValueError):
        run_mock("openai", models=[])
    with pytest.raises(ValueError, match="unknown mock"):
        run_mock("gemini")
    with pytest.raises(TypeError):
        run_mock("openai", colour="blue")


def test_serve_mocks_prints_urls_logs_requests_and_stops_on_ctrl_c() -> None:
    script = (
        "from proxyproof.mocks.app import serve_mocks\n"
        "serve_mocks(['openai', 'openai', 'ollama'], port=0, api_key='shh')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        announced = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(2))
        assert set(announced) == {"openai", "ollama"}
        reply = httpx.post(
            announced["openai"] + "/v1/chat/completions", json=CHAT,
            headers={"Authorization": "Bearer shh"}, timeout=10,
        )
        assert reply.status_code == 200
        line = process.stdout.readline().strip()
        assert line.startswith("openai POST /v1/chat/completions 200 ") and "shh" not in line
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
