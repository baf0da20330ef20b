"""Every fault kind, observed from a client (and from the journal's own record of the request)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from proxyproof.mocks import KIND_NAMES, kind
from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.mocks.base import Call, JsonReply
from proxyproof.mocks.transmit import corrupt

CHAT = {"model": "llama2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
STREAM = {**CHAT, "stream": True}
FRAMES = 7  # role chunk, 4 tokens, finish chunk, [DONE]
Sse = Callable[[str], list[Any]]


def blocks(text: str) -> list[str]:
    return [block for block in text.split("\n\n") if block]


def last_entry(mock: RunningMock) -> dict[str, Any]:
    entry = mock.control.journal()[-1]
    return mock.control.wait(entry["id"], timeout=10)


def test_status_answers_anything(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault(
        "status", status=502, body="<html>bad gateway</html>", content_type="text/html",
        headers={"X-Upstream": "gone"},
    )
    reply = http.post("/v1/chat/completions", json=CHAT)
    assert (reply.status_code, reply.text) == (502, "<html>bad gateway</html>")
    assert reply.headers["content-type"] == "text/html"
    assert reply.headers["x-upstream"] == "gone"


def test_latency_holds_the_headers_back(mock: RunningMock) -> None:
    mock.control.fault("latency", seconds=60, times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(mock.url + "/v1/chat/completions", json=CHAT, timeout=0.3)
    assert last_entry(mock)["outcome"] == "client_disconnected"
    mock.control.fault("latency", seconds=0.01, times=1)
    reply = httpx.post(mock.url + "/v1/chat/completions", json=CHAT, timeout=10)
    assert reply.status_code == 200 and reply.json()["choices"]


@pytest.mark.parametrize("mock", [{"name": "openai", "latency": 60}], indirect=True)
def test_settings_latency_applies_to_generation_only(mock: RunningMock) -> None:
    assert httpx.get(mock.url + "/v1/models", timeout=10).status_code == 200
    assert httpx.post(mock.url + "/v1/embeddings", json={"model": "m", "input": "x"},
                      timeout=10).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(mock.url + "/v1/chat/completions", json=CHAT, timeout=0.3)
    assert last_entry(mock)["outcome"] == "client_disconnected"


def test_chunk_delay_dribbles_the_stream(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault("chunk_delay", seconds=0.2)
    with http.stream("POST", "/v1/chat/completions", json=STREAM) as reply:
        lines = reply.iter_lines()
        first = next(line for line in lines if line)
        # The client holds the first frame while the mock has not written the rest yet.
        in_flight = mock.control.journal()[-1]
        rest = [line for line in lines if line]
    assert first.startswith("data: {")
    assert in_flight["outcome"] == "pending" and in_flight["frames_sent"] < FRAMES
    assert rest[-1] == "data: [DONE]" and len(rest) == FRAMES - 1
    entry = last_entry(mock)
    assert entry["frames_sent"] == FRAMES and entry["outcome"] == "completed"
    times = entry["frame_times"]
    assert all(later > earlier for earlier, later in zip(times, times[1:], strict=False))


def test_reset_before_headers(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault("reset_before_headers")
    for request in (CHAT, STREAM):
        with pytest.raises(httpx.TransportError):
            http.post("/v1/chat/completions", json=request)
        entry = last_entry(mock)
        assert (entry["status"], entry["outcome"]) == (None, "reset")


def test_reset_mid_stream(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault("reset_mid_stream", after_frames=2)
    received = []
    with (
        pytest.raises(httpx.TransportError),
        http.stream("POST", "/v1/chat/completions", json=STREAM) as reply,
    ):
        assert reply.status_code == 200
        received.extend(line for line in reply.iter_lines() if line)
    assert len(received) <= 2 and all(line.startswith("data: {") for line in received)
    entry = last_entry(mock)
    assert (entry["status"], entry["outcome"], entry["frames_sent"]) == (200, "reset", 2)
    with pytest.raises(httpx.TransportError):  # a non-streamed body cut off half way
        http.post("/v1/chat/completions", json=CHAT)


def test_empty_response(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault("empty_response")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        http.post("/v1/chat/completions", json=CHAT)
    assert last_entry(mock)["outcome"] == "empty"


def test_malformed_json(mock: RunningMock, http: httpx.Client, sse: Sse) -> None:
    mock.control.fault("malformed_json")
    whole = http.post("/v1/chat/completions", json=CHAT)
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        whole.json()
    frames = blocks(http.post("/v1/chat/completions", json=STREAM).text)
    assert len(frames) == FRAMES and frames[0].startswith("data: {")
    with pytest.raises(json.JSONDecodeError):
        json.loads(frames[0][len("data: ") :])
    assert sse("\n\n".join(frames[1:]) + "\n\n")[-1] == "[DONE]"  # the rest is intact


def test_truncated_stream(mock: RunningMock, http: httpx.Client, sse: Sse) -> None:
    mock.control.fault("truncated_stream", after_frames=3)
    reply = http.post("/v1/chat/completions", json=STREAM)  # ends cleanly: no transport error
    events = sse(reply.text)
    assert len(events) == 3 and "[DONE]" not in events
    assert all(event["choices"][0]["finish_reason"] is None for event in events)
    entry = last_entry(mock)
    assert (entry["outcome"], entry["frames_sent"]) == ("truncated", 3)
    whole = http.post("/v1/chat/completions", json=CHAT)
    assert whole.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        whole.json()


def test_stream_error(mock: RunningMock, http: httpx.Client, sse: Sse) -> None:
    mock.control.fault("stream_error", after_frames=2, message="out of memory")
    events = sse(http.post("/v1/chat/completions", json=STREAM).text)
    assert len(events) == 3 and "choices" in events[1]
    assert events[2]["error"]["message"] == "out of memory"
    whole = http.post("/v1/chat/completions", json=CHAT)
    assert whole.status_code == 500
    assert whole.json()["error"]["message"] == "out of memory"


def test_faults_respect_match_and_times(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault("rate_limit", match={"path": "/v1/completions"}, times=2, retry_after=2)
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    limited = [http.post("/v1/completions", json={"model": "llama2", "prompt": "x"})
               for _ in range(3)]
    assert [r.status_code for r in limited] == [429, 429, 200]
    assert limited[0].headers["retry-after"] == "2"
    assert limited[0].json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("name", KIND_NAMES)
def test_replacing_faults_speak_each_servers_dialect(name: str) -> None:
    mock_kind = kind(name)
    with run_mock(name) as mock:
        mock.control.fault("loading", estimated_time=7.5, times=1)
        mock.control.fault("rate_limit", retry_after=4, times=1)
        loading = httpx.get(mock.url + "/anything", timeout=10)
        limited = httpx.get(mock.url + "/anything", timeout=10)
    anything = Call("GET", "/anything", {}, {}, {}, b"", mock.settings)
    expected_loading = mock_kind.loading(anything, 7.5)
    assert loading.status_code == expected_loading.status
    if isinstance(expected_loading, JsonReply):
        assert loading.json() == expected_loading.body
    expected_limit = mock_kind.error(429, "Rate limit reached: please try again in 4s.")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "4")
    if isinstance(expected_limit, JsonReply):
        assert limited.json() == expected_limit.body


def test_stream_errors_follow_the_route_protocol() -> None:
    with run_mock("ollama") as mock:
        mock.control.fault("stream_error", after_frames=1, message="runner died")
        native = httpx.post(
            mock.url + "/api/chat",
            json={"model": "llama2", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        compatible = httpx.post(mock.url + "/v1/chat/completions", json=STREAM, timeout=10)
    lines = native.text.splitlines()
    assert len(lines) == 2 and json.loads(lines[-1]) == {"error": "runner died"}
    last = blocks(compatible.text)[-1]
    assert last.startswith("data: ")
    assert json.loads(last[len("data: ") :])["error"]["message"] == "runner died"


@pytest.mark.parametrize(
    "payload",
    [b'{"a":1}', b'data: {"x":"y"}\n\n', b'{"done":true}\n', b"[1,2,3]", b"7", b'"text"'],
)
def test_corrupt_never_parses_and_keeps_the_framing(payload: bytes) -> None:
    broken = corrupt(payload)
    assert broken.endswith(payload[len(payload.rstrip(b"\r\n")) :])
    content = broken.rstrip(b"\r\n").removeprefix(b"data: ")
    with pytest.raises(ValueError):
        json.loads(content)


def test_a_client_leaving_mid_stream_is_journaled(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.fault("chunk_delay", seconds=0.2)
    with http.stream("POST", "/v1/chat/completions", json=STREAM) as reply:
        first = next(line for line in reply.iter_lines() if line)
    # Leaving the block closed the connection after one frame.
    assert first.startswith("data: {")
    entry = last_entry(mock)
    assert entry["outcome"] == "client_disconnected"
    assert 1 <= entry["frames_sent"] < FRAMES and entry["status"] == 200
