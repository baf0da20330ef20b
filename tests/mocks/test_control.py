"""The control API under ``/__mock__/``: journal, long-poll, scripts, and ``MockControl``."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from proxyproof.mocks import control_api, kind
from proxyproof.mocks.app import MockServer, RunningMock
from proxyproof.mocks.base import MockSettings
from proxyproof.mocks.control import MockControl
from proxyproof.mocks.state import MockState

CHAT = {"model": "llama2", "messages": [{"role": "user", "content": "hi"}]}


def raw_request(url: str, path: str, body: bytes) -> socket.socket:
    """Send a request and leave the connection open without reading the answer."""
    parts = urlsplit(url)
    connection = socket.create_connection((parts.hostname, parts.port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    connection.sendall(head.encode() + body)
    return connection


def test_the_journal_records_every_request(mock: RunningMock, http: httpx.Client) -> None:
    http.post(
        "/v1/chat/completions?trace=1&tag=a&tag=b",
        json=CHAT,
        headers=[("X-Team", "one"), ("X-Team", "two")],
    )
    http.post("/v1/completions", content=b"plain words", headers={"Content-Type": "text/plain"})
    http.get("/v1/models")
    http.get("/__mock__/journal")  # control requests are not journaled
    entries = mock.control.journal()
    assert [(e["id"], e["method"], e["path"]) for e in entries] == [
        (1, "POST", "/v1/chat/completions"),
        (2, "POST", "/v1/completions"),
        (3, "GET", "/v1/models"),
    ]
    chat, text, listing = entries
    assert chat["query"] == {"trace": "1", "tag": ["a", "b"]}
    assert chat["headers"]["X-Team"] == "one, two"
    assert chat["body"] == CHAT
    assert (chat["status"], chat["outcome"], chat["frames_sent"], chat["frame_times"]) == (
        200, "completed", 0, [],
    )
    assert chat["time"] <= chat["ended"]
    assert (text["body"], text["status"]) == ("plain words", 400)
    assert listing["body"] == ""
    assert mock.control.journal(path="/v1/models") == [listing]
    assert mock.control.journal(since=2) == [listing]
    assert mock.control.entry(2) == text
    mock.control.clear_journal()
    assert mock.control.journal() == []
    http.get("/v1/models")
    assert [e["id"] for e in mock.control.journal()] == [4]  # ids keep counting
    with pytest.raises(LookupError):
        mock.control.entry(1)


def test_stream_frames_are_journaled(mock: RunningMock, http: httpx.Client) -> None:
    reply = http.post("/v1/chat/completions", json={**CHAT, "stream": True, "max_tokens": 2})
    frames = [block for block in reply.text.split("\n\n") if block]
    entry = mock.control.journal()[0]
    assert entry["frames_sent"] == len(frames) == 5  # role, 2 tokens, finish, [DONE]
    assert len(entry["frame_times"]) == 5
    assert entry["frame_times"] == sorted(entry["frame_times"])


def test_wait_long_polls_until_the_request_ends(mock: RunningMock) -> None:
    mock.control.fault("latency", seconds=60)
    connection = raw_request(mock.url, "/v1/chat/completions", json.dumps(CHAT).encode())
    try:
        with pytest.raises(TimeoutError):
            mock.control.wait(1, timeout=0.2)
    finally:
        connection.close()  # the client gives up: the mock notices and ends the request
    entry = mock.control.wait(1, timeout=10)
    assert entry["outcome"] == "client_disconnected"
    assert entry["status"] is None and entry["ended"] is not None


def test_wait_for_a_request_that_has_not_arrived_yet(mock: RunningMock) -> None:
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(mock.control.wait(1, timeout=30)))
    waiter.start()
    httpx.get(mock.url + "/v1/models")
    waiter.join(timeout=30)
    assert result["path"] == "/v1/models" and result["outcome"] == "completed"


def test_scripts_match_and_count(mock: RunningMock, http: httpx.Client) -> None:
    control = mock.control
    once = control.script(
        match={"path": "/v1/chat/*", "body_contains": "secret"}, times=1,
        response={"status": 418, "json": {"error": "teapot"}},
    )
    twice = control.script(
        match={"method": "post", "headers": {"x-mode": "slow"}}, times=2,
        response={"status": 202, "body": "accepted", "headers": {"X-Scripted": "yes"}},
    )
    always = control.script(
        match={"path": "/v1/models"}, response={"status": 503, "json": {"down": True}}
    )
    secret = {**CHAT, "messages": [{"role": "user", "content": "a secret"}]}
    assert http.post("/v1/chat/completions", json=secret).status_code == 418
    assert http.post("/v1/chat/completions", json=secret).status_code == 200  # used up
    bare = control.script(match={"path": "/v1/embeddings"}, times=1, response={"status": 500})
    empty = http.post("/v1/embeddings", json={"model": "m", "input": "x"})
    assert (empty.status_code, empty.content) == (500, b"")
    control.remove_script(bare)
    for _ in range(2):
        reply = http.post("/v1/completions", json=CHAT, headers={"X-Mode": "slow"})
        assert (reply.status_code, reply.text, reply.headers["x-scripted"]) == (
            202, "accepted", "yes",
        )
        assert reply.headers["content-type"].startswith("text/plain")
    assert http.post("/v1/completions", json=CHAT, headers={"X-Mode": "slow"}).status_code == 400
    for _ in range(3):
        assert http.get("/v1/models").json() == {"down": True}
    listed = {s["id"]: s for s in control.scripts()}
    assert (listed[once]["remaining"], listed[once]["hits"]) == (0, 1)
    assert (listed[twice]["remaining"], listed[twice]["times"]) == (0, 2)
    assert (listed[always]["remaining"], listed[always]["hits"]) == (None, 3)
    assert listed[always]["match"] == {"path": "/v1/models"}
    assert listed[always]["response"]["status"] == 503
    control.remove_script(always)
    assert http.get("/v1/models").status_code == 200
    control.clear_scripts()
    assert control.scripts() == []


def test_the_first_matching_script_wins(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.script(match={"path": "/v1/models"}, response={"status": 201, "json": 1})
    mock.control.script(match={"path": "/v1/*"}, response={"status": 202, "json": 2})
    assert http.get("/v1/models").status_code == 201
    assert http.get("/v1/models/llama2").status_code == 202


@pytest.mark.parametrize("mock", [{"name": "openai", "api_key": "k-123"}], indirect=True)
def test_responses_come_before_the_key_check_and_replies_after(
    mock: RunningMock, http: httpx.Client
) -> None:
    mock.control.script(match={"path": "/v1/models"}, response={"json": {"ok": True}})
    assert http.get("/v1/models").json() == {"ok": True}
    mock.control.script(reply="Scripted words.")
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 401
    reply = http.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer k-123"})
    assert reply.json()["choices"][0]["message"]["content"] == "Scripted words."


def test_reset_clears_journal_and_scripts(mock: RunningMock, http: httpx.Client) -> None:
    mock.control.script(response={"status": 500})
    http.get("/v1/models")
    mock.control.reset()
    assert mock.control.journal() == [] and mock.control.scripts() == []
    assert http.get("/v1/models").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"response": {"status": 200}, "reply": "x"}, "exactly one of"),
        ({"match": {"path": "/x"}}, "exactly one of"),
        ({"reply": "x", "times": 0}, "'times' must be a positive integer"),
        ({"reply": "x", "match": {"url": "/x"}}, "unknown match field(s): url"),
        ({"reply": "x", "match": {"path": "x"}}, "must start with '/'"),
        ({"reply": "x", "match": {"headers": {"a": 1}}}, "must be an object of strings"),
        ({"reply": 42}, "'reply' must be a string"),
        ({"response": {"status": 99}}, "status must be an HTTP status code"),
        ({"response": {"json": 1, "body": "x"}}, "not both"),
        ({"fault": {"kind": "gremlins"}}, "unknown fault kind 'gremlins'"),
        ({"fault": {"kind": "latency"}}, "needs 'seconds'"),
        ({"fault": {"kind": "latency", "seconds": -1}}, "non-negative number"),
        ({"fault": {"kind": "truncated_stream", "after_frames": 1.5}}, "non-negative integer"),
        ({"fault": {"kind": "rate_limit", "retry": 3}}, "unknown: retry"),
        ({"fault": {"kind": "stream_error", "message": 5}}, "'message' must be a string"),
        ({"surprise": True}, "unknown script field(s): surprise"),
        ([1, 2], "a script must be a JSON object"),
    ],
)
def test_bad_scripts_get_a_clear_400(http: httpx.Client, body: object, message: str) -> None:
    reply = http.post("/__mock__/scripts", json=body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]


def test_bad_control_requests(http: httpx.Client) -> None:
    not_json = http.post("/__mock__/scripts", content=b"{nope")
    assert (not_json.status_code, not_json.json()) == (
        400, {"error": "the control API takes a JSON body"},
    )
    assert http.post("/__mock__/scripts").status_code == 400
    assert http.get("/__mock__/nothing").status_code == 404
    assert http.put("/__mock__/journal").status_code == 405
    assert http.get("/__mock__/journal/abc").status_code == 400
    assert http.get("/__mock__/journal/1/wait", params={"timeout": "soon"}).status_code == 400
    assert http.get("/__mock__/journal/1/wait", params={"timeout": "-1"}).status_code == 400
    assert http.delete("/__mock__/scripts/9").status_code == 404
    assert http.get("/__mock__/journal", params={"since": "x"}).status_code == 400


@pytest.mark.parametrize("mock", [{"name": "openai", "api_key": "hidden-key"}], indirect=True)
def test_describe_hides_the_key(mock: RunningMock, http: httpx.Client) -> None:
    reply = http.get("/__mock__/")
    assert "hidden-key" not in reply.text
    described = reply.json()
    assert described == mock.control.describe() == http.get("/__mock__").json()
    assert described["kind"] == "openai"
    assert described["settings"] == {"models": ["llama2"], "latency": 0.0, "api_key_set": True}
    assert {"method": "POST", "path": "/v1/chat/completions", "public": False} in (
        described["endpoints"]
    )
    assert "reset_mid_stream" in described["fault_kinds"]
    assert "POST /__mock__/scripts" in described["control"]


def test_mock_server_in_a_running_loop() -> None:
    async def scenario() -> tuple[list[dict], dict, int]:
        async with MockServer("openai", models=["llama2"]) as server:
            assert server.control is not None
            server.control.script(match={"path": "/v1/models"}, response={"status": 204})
            async with httpx.AsyncClient(base_url=server.url) as client:
                status = (await client.get("/v1/models")).status_code
                await client.post("/v1/chat/completions", json=CHAT)
            journal = server.control.journal()
            return journal, await server.wait(journal[-1]["id"]), status

    journal, waited, status = asyncio.run(scenario())
    assert status == 204
    assert [e["path"] for e in journal] == ["/v1/models", "/v1/chat/completions"]
    assert waited["outcome"] == "completed" and waited["id"] == 2


class RecordingControl(MockControl):
    """A client that records the requests it would send instead of sending them."""

    def __init__(self) -> None:
        super().__init__("http://mock.invalid")
        self.sent: list[tuple[str, str]] = []

    def _http(self, method, path, payload, query, timeout):  # type: ignore[no-untyped-def]
        self.sent.append((method, path))
        return 200, {"id": 1, "requests": [], "scripts": []}


def test_client_paths_and_server_dispatch_come_from_one_table() -> None:
    client = RecordingControl()
    calls = {
        "describe": client.describe, "journal": client.journal,
        "entry": lambda: client.entry(3), "clear_journal": client.clear_journal,
        "wait": lambda: client.wait(3), "add_script": lambda: client.script(reply="x"),
        "scripts": client.scripts, "remove_script": lambda: client.remove_script(3),
        "clear_scripts": client.clear_scripts, "reset": client.reset,
    }
    for name, call in calls.items():
        client.sent.clear()
        call()
        ((method, path),) = client.sent
        endpoint, params = control_api.resolve(method, path)
        assert endpoint is control_api.BY_NAME[name]
        assert params == ({"id": "3"} if "{id}" in endpoint.path else {})
    # Only GET of one script has no client method of its own.
    assert set(control_api.BY_NAME) - set(calls) == {"script"}


def test_the_server_answers_and_lists_every_endpoint_of_the_table(
    mock: RunningMock, http: httpx.Client
) -> None:
    for endpoint in control_api.CONTROL_ENDPOINTS:
        script_id = mock.control.script(match={"path": "/nowhere"}, reply="x")
        http.get("/v1/models")
        entry_id = mock.control.journal()[-1]["id"]
        some_id = script_id if "/scripts/" in endpoint.path else entry_id
        body = {"reply": "y"} if endpoint.name == "add_script" else None
        reply = http.request(endpoint.method, endpoint.url_path(id=some_id), json=body)
        assert reply.status_code == 200, (endpoint.listing, reply.text)
    listed = http.get("/__mock__/").json()["control"]
    assert listed == [endpoint.listing for endpoint in control_api.CONTROL_ENDPOINTS] == [
        "GET /__mock__/", "GET /__mock__/journal", "DELETE /__mock__/journal",
        "GET /__mock__/journal/{id}", "GET /__mock__/journal/{id}/wait?timeout=S",
        "GET /__mock__/scripts", "POST /__mock__/scripts", "DELETE /__mock__/scripts",
        "GET /__mock__/scripts/{id}", "DELETE /__mock__/scripts/{id}", "POST /__mock__/reset",
    ]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("PUT", "/__mock__/scripts", 405, "/__mock__/scripts allows GET, POST, DELETE, not PUT"),
        ("POST", "/__mock__/journal/7/wait", 405, "/__mock__/journal/7/wait allows GET, not POST"),
        ("GET", "/__mock__/journal/7/x", 404, "no control endpoint GET /__mock__/journal/7/x"),
        ("GET", "/__mock__/scripts/x", 400, "script id must be an integer, got 'x'"),
    ],
)
def test_control_refusals_name_the_problem(
    method: str, path: str, status: int, message: str
) -> None:
    state = MockState(kind("openai"), MockSettings())
    with pytest.raises(control_api.ControlError) as refused:
        endpoint, params = control_api.resolve(method, path)
        endpoint.answer(state, control_api.ControlRequest(params, {}, None))
    assert (refused.value.status, refused.value.message[: len(message)]) == (status, message)


def test_a_trailing_slash_is_tolerated() -> None:
    assert control_api.resolve("GET", "/__mock__/journal/")[0] is control_api.BY_NAME["journal"]
    assert control_api.resolve("GET", "/__mock__")[0] is control_api.BY_NAME["describe"]
