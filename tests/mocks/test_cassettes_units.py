"""The pure parts of cassettes: the file format, frame splitting, field paths, matching,
redaction and scripts files."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyproof.mocks import field_path
from proxyproof.mocks.base import NOT_JSON
from proxyproof.mocks.cassette import (
    Cassette,
    CassetteError,
    Frame,
    RecordedRequest,
    RecordedResponse,
    dumps,
    file_name,
    loads,
)
from proxyproof.mocks.cassette_match import (
    ABSENT,
    Difference,
    Miss,
    Received,
    body_differences,
    find,
    miss_message,
)
from proxyproof.mocks.frames import FrameSplitter, stream_kind
from proxyproof.mocks.redaction import Redaction
from proxyproof.mocks.stub_files import StubFileError, load_scripts


def _cassette(frames: tuple[bytes, ...] = (), body: bytes = b"", json_body=None,
              path: str = "/api/chat", name: str = "") -> Cassette:
    request = RecordedRequest("POST", path, json=NOT_JSON if json_body is None else json_body)
    if frames:
        response = RecordedResponse(200, {"Content-Type": "text/event-stream"}, stream="sse",
                                    frames=tuple(Frame(i * 0.25, f) for i, f in enumerate(frames)))
    else:
        response = RecordedResponse(200, {"Content-Type": "application/json"}, body=body)
    return Cassette("ollama", request, response, "http://gpu-box:11434", "2025-01-01T00:00:00Z",
                    name)


@pytest.mark.parametrize("frames", [
    (b'data: {"a":1}\n\n', b"data: [DONE]\n\n"),
    (b'data: {"a":1}\r\n\r\n', b"data: x \t\n\n"),  # CRLF, trailing blanks, a tab
    (b'{"t":"\xc3\xa9\xe2\x82\xac"}\n', b"\xff\xfe not utf-8\n"),  # unicode, then bytes
    (b"no delimiter at the end",),
])
def test_frames_survive_a_round_trip_byte_for_byte(frames) -> None:
    cassette = _cassette(frames, json_body={"model": "m", "n": 1.5, "on": True, "x": None})
    read = loads(dumps(cassette))
    assert [frame.data for frame in read.response.frames] == list(frames)
    assert [frame.at for frame in read.response.frames] == [0.0, 0.25, 0.5, 0.75][:len(frames)]
    assert read.request.json == {"model": "m", "n": 1.5, "on": True, "x": None}


def test_a_body_that_is_not_utf8_is_written_as_base64() -> None:
    text = dumps(_cassette(body=b"\x00\xff\x10"))
    assert "body_base64:" in text
    assert loads(text).response.body == b"\x00\xff\x10"


def test_the_file_is_readable_a_frame_a_block() -> None:
    text = dumps(_cassette((b'{"message":{"content":"Hel"}}\n',), json_body={"model": "m"}))
    assert "text: |\n      {\"message\":{\"content\":\"Hel\"}}\n" in text
    assert text.startswith("# A proxyproof cassette")
    assert "recorded_from: http://gpu-box:11434" in text


@pytest.mark.parametrize(("text", "problem"), [
    ("- a list", "not a cassette"),
    ("request: {method: GET, path: /}", "the cassette has no 'response'"),
    ("request: {method: GET, path: x}\nresponse: {status: 200}", "request.path must start"),
    ("request: {method: GET, path: /}\nresponse: {status: 999}", "not an HTTP status"),
    ("request: {method: GET, path: /}\nresponse: {status: '200'}", "response.status must be"),
    ("request: {method: GET, path: /}\nresponse: {status: 200, stream: sse, frames: [1]}",
     "response.frames[0] must be a mapping"),
    ("request: {method: GET, path: /}\nresponse: {status: 200, body_base64: '!!'}",
     "not valid base64"),
    ("request: [", "not valid YAML (line 1"),
    ("proxyproof_cassette: 9\nrequest: {}\nresponse: {}", "cassette format 9"),
])
def test_a_bad_cassette_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(CassetteError) as caught:
        loads(text)
    assert problem in str(caught.value)


def test_file_names_are_stable_and_descriptive() -> None:
    body = {"model": "llama2:7b", "messages": [{"role": "user", "content": "hi"}]}
    name = file_name("POST", "/api/chat", body)
    assert name.startswith("post-api-chat-llama2-7b-") and name.endswith(".yaml")
    assert file_name("POST", "/api/chat", dict(reversed(body.items()))) == name
    assert file_name("POST", "/api/chat", {**body, "stream": False}) != name
    assert file_name("GET", "/", NOT_JSON).startswith("get-root-")


# --- frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "stream", "frames"), [
    ("sse", b"data: a\n\ndata: b\n\n", [b"data: a\n\n", b"data: b\n\n"]),
    ("sse", b"data: a\r\n\r\ndata: b\r\n\r\n", [b"data: a\r\n\r\n", b"data: b\r\n\r\n"]),
    ("sse", b"event: x\ndata: a\n\ndata: tail", [b"event: x\ndata: a\n\n", b"data: tail"]),
    ("ndjson", b'{"a":1}\n{"b":2}\n', [b'{"a":1}\n', b'{"b":2}\n']),
])
def test_a_stream_is_cut_into_frames_however_it_arrives(kind, stream, frames) -> None:
    for size in (1, 2, 3, len(stream)):
        splitter = FrameSplitter(kind)
        cut = [f for at in range(0, len(stream), size)
               for f in splitter.feed(stream[at:at + size])]
        assert cut + splitter.end() == frames, size


def test_stream_kinds_come_from_the_content_type() -> None:
    assert stream_kind("text/event-stream; charset=utf-8") == "sse"
    assert stream_kind("application/x-ndjson") == "ndjson"
    assert stream_kind("application/json") is None
    assert stream_kind(None) is None


# --- field paths and matching -------------------------------------------------------------------


def test_field_paths_reach_nested_fields_list_items_and_wildcards() -> None:
    body = {"seed": 1, "options": {"seed": 2, "top_k": 3},
            "messages": [{"content": "a", "images": ["x"]}, {"content": "b"}]}
    parse = field_path.parse
    assert field_path.without(body, [parse("options.seed")])["options"] == {"top_k": 3}
    assert "seed" not in field_path.without(body, [parse("seed")])
    assert field_path.without(body, [parse("messages.*.images")])["messages"] == [
        {"content": "a"}, {"content": "b"}]
    assert field_path.masked(body, [parse("messages.1.content")], "***")["messages"][1] == {
        "content": "***"}
    assert field_path.without(body, [parse("no.such.field")]) == body
    assert body["options"]["seed"] == 2  # the original is left alone
    for bad in ("", "a..b", "."):
        with pytest.raises(ValueError):
            parse(bad)


def test_body_differences_compare_as_json() -> None:
    assert body_differences({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1.0}) == []
    assert body_differences({"stream": True}, {"stream": 1}) == [
        Difference("body.stream", True, 1)]
    assert body_differences({"a": [1]}, {"a": [1, 2], "b": 0}) == [
        Difference("body.a.1", ABSENT, 2), Difference("body.b", ABSENT, 0)]
    assert body_differences({"key": "***", "x": 1}, {"key": "real-secret", "x": 1}) == []


def test_the_closest_cassette_is_on_the_same_path_first() -> None:
    chat = _cassette(body=b"{}", json_body={"model": "m", "a": 1, "b": 2}, name="chat.yaml")
    other = _cassette(body=b"{}", json_body={"model": "m", "a": 1, "b": 2},
                      path="/api/generate", name="generate.yaml")
    received = Received("POST", "/api/chat", {"model": "m", "a": 5, "b": 6}, "")
    miss = find([other, chat], received)
    assert isinstance(miss, Miss) and miss.closest is chat
    assert [d.field for d in miss.differences] == ["body.a", "body.b"]
    message = miss_message(received, miss)
    assert message.startswith("no cassette matches POST /api/chat; the closest is chat.yaml")
    assert "body.a: expected 1, got 5" in message
    assert find([other, chat], Received("POST", "/api/chat", {"model": "m", "a": 1, "b": 2},
                                        "")) is chat
    assert find([chat], Received("POST", "/api/chat", {"model": "m", "a": 9, "b": 2}, ""),
                [("a",)]) is chat


# --- redaction --------------------------------------------------------------------------------


def test_credentials_are_masked_and_connection_headers_dropped() -> None:
    redaction = Redaction.adding(headers=["X-Team"], query=["sid"], fields=["auth.key"])
    headers = redaction.header_map([("Host", "h"), ("authorization", "Bearer k"),
                                    ("X-API-KEY", "k"), ("x-team", "t"), ("Accept", "a"),
                                    ("Accept", "b"), ("Content-Length", "3")])
    assert headers == {"authorization": "***", "X-API-KEY": "***", "x-team": "***",
                       "Accept": ["a", "b"]}
    assert redaction.query_map([("key", "k"), ("api_key", "k"), ("sid", "s"), ("q", "v")]) == {
        "key": "***", "api_key": "***", "sid": "***", "q": "v"}
    assert redaction.body({"auth": {"key": "k"}, "x": 1}) == {"auth": {"key": "***"}, "x": 1}


# --- scripts files ------------------------------------------------------------------------------


def test_scripts_files_load_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"match": {"path": "/b"}, "reply": "from json"}')
    (tmp_path / "a.yaml").write_text(
        "- match: {path: /a}\n  reply: first\n- match: {path: /a2}\n  fault: {kind: latency, "
        "seconds: 1}\n")
    (tmp_path / "c.yml").write_text("")  # empty: no scripts
    (tmp_path / "notes.txt").write_text("not a script")
    assert [spec["match"]["path"] for spec in load_scripts(tmp_path)] == ["/a", "/a2", "/b"]


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("bad.yaml", "match: {path: /x}\nrespnse: {status: 200}\n",
     "bad.yaml: unknown script field(s): respnse"),
    ("list.yaml", "- {reply: ok}\n- {reply: 3}\n",
     "list.yaml: script 2: 'reply' must be a string"),
    ("broken.yaml", "match: {path: /x\n", "broken.yaml: not valid YAML (line"),
    ("broken.json", '{"reply": }', "broken.json: not valid JSON (line 1"),
])
def test_a_bad_scripts_file_is_named_with_its_problem(tmp_path: Path, name, text,
                                                      problem) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(StubFileError) as caught:
        load_scripts(tmp_path)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_replayed_reply_leaves_redacted_headers_out() -> None:
    from proxyproof.mocks.replayer import recorded_reply

    response = RecordedResponse(200, {"Content-Type": "application/json", "Set-Cookie": "***",
                                      "X-Request-Id": "r1", "Content-Length": "2"}, body=b"{}")
    reply = recorded_reply(Cassette("ollama", RecordedRequest("GET", "/"), response))
    assert reply.headers == {"Content-Type": "application/json", "X-Request-Id": "r1"}
    assert reply.body == b"{}"
