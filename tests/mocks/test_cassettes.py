"""Record a server the mocks have never seen through a mock, stop it, replay: the same bytes,
the same frames, secrets in no file; strict misses, ignored fields, pacing, faults on replays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cassette_upstream import EVENTS, LINES, SECRET, TAGS, running_upstream

from proxyproof.mocks.app import run_mock
from proxyproof.mocks.base import Call, MockSettings
from proxyproof.mocks.replayer import Replayer, read_directory

CUSTOM_SECRET = "custom-secret-0815"
QUERY_SECRET = "query-secret-42"
HEADERS = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": "xkey-secret-99",
           "X-Team-Token": CUSTOM_SECRET}
CHAT = {"model": "zebra", "messages": [{"role": "user", "content": "hello"}]}
PLAIN = {**CHAT, "stream": False, "options": {"seed": 7, "temperature": 0.2}}
SSE_CHAT = {"model": "zebra", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def _exchanges(url: str) -> dict[str, httpx.Response]:
    """The requests every test here records and replays."""
    with httpx.Client(base_url=url, timeout=20) as client:
        return {
            "ndjson": client.post(f"/api/chat?key={QUERY_SECRET}", json=CHAT, headers=HEADERS),
            "plain": client.post("/api/chat", json=PLAIN, headers=HEADERS),
            "sse": client.post("/v1/chat/completions", json=SSE_CHAT, headers=HEADERS),
            "tags": client.get("/api/tags", headers=HEADERS),
        }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Cassettes recorded once for this module, the upstream gone afterwards."""
    directory = tmp_path_factory.mktemp("recorded") / "cassettes"
    with running_upstream() as (upstream, server), run_mock(
        "ollama", record_from=server.url, cassettes=str(directory),
        redact_headers=["X-Team-Token"],
    ) as recorder:
        replies = _exchanges(recorder.url)
        journal = recorder.control.journal()
        seen = list(upstream.authorizations)
    with pytest.raises(httpx.ConnectError):  # the real server is gone from here on
        httpx.get(server.url + "/api/tags", timeout=5)
    return directory, {"replies": replies, "journal": journal, "authorizations": seen}


def _cassettes(directory: Path) -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in directory.iterdir()}


def test_recording_passes_through_and_writes_one_readable_file_per_exchange(recorded) -> None:
    directory, seen = recorded
    replies = seen["replies"]
    assert replies["ndjson"].content == b"".join(LINES)
    assert replies["sse"].content == b"".join(EVENTS)
    assert replies["plain"].json()["message"]["content"] == "wombat 7"
    assert replies["tags"].json() == TAGS
    # the real server got the credentials: the recorder passes them on
    assert seen["authorizations"] == [f"Bearer {SECRET}"] * 2
    files = _cassettes(directory)
    assert len(files) == 4
    assert all(name.endswith(".yaml") for name in files)
    assert any(name.startswith("post-api-chat-zebra-") for name in files)
    assert any(name.startswith("get-api-tags-") for name in files)
    assert [e["status"] for e in seen["journal"]] == [200, 200, 200, 200]


def test_a_stream_is_stored_frame_by_frame_with_times_from_the_first(recorded) -> None:
    directory, _ = recorded
    streams = {doc["response"]["stream"]: doc for doc in _cassettes(directory).values()
               if "stream" in doc["response"]}
    sse, ndjson = streams["sse"], streams["ndjson"]
    assert [f["text"].encode() for f in sse["response"]["frames"]] == EVENTS
    assert [f["text"].encode() for f in ndjson["response"]["frames"]] == LINES
    times = [frame["at"] for frame in sse["response"]["frames"]]
    assert times[0] == 0.0 and times == sorted(times)
    assert sse["response"]["headers"]["X-Upstream-Marker"] == "okapi"
    assert ndjson["request"]["json"] == CHAT
    assert ndjson["request"]["method"] == "POST" and ndjson["request"]["path"] == "/api/chat"


def test_no_secret_reaches_any_cassette_file(recorded) -> None:
    directory, _ = recorded
    written = [path.read_text() for path in directory.rglob("*") if path.is_file()]
    assert len(written) == 4
    for text in written:
        for secret in (SECRET, "xkey-secret-99", CUSTOM_SECRET, QUERY_SECRET):
            assert secret not in text
    chat = next(doc for doc in _cassettes(directory).values()
                if doc["request"]["query"])
    assert chat["request"]["query"] == {"key": "***"}
    headers = chat["request"]["headers"]
    assert headers["Authorization"] == headers["X-Api-Key"] == headers["X-Team-Token"] == "***"


def test_replay_without_the_server_gives_the_same_bytes_and_frames(recorded) -> None:
    directory, seen = recorded
    with run_mock("ollama", replay=str(directory), strict=True) as replayer:
        # no credentials at all: replay does not need them
        with httpx.Client(base_url=replayer.url, timeout=10) as client:
            again = {
                "ndjson": client.post("/api/chat", json=CHAT),
                "plain": client.post("/api/chat", json=PLAIN),
                "sse": client.post("/v1/chat/completions", json=SSE_CHAT),
                "tags": client.get("/api/tags"),
            }
        journal = replayer.control.journal()
    for name, reply in again.items():
        first = seen["replies"][name]
        assert reply.status_code == first.status_code, name
        assert reply.content == first.content, name
        assert reply.headers["content-type"] == first.headers["content-type"], name
    assert again["sse"].headers["X-Upstream-Marker"] == "okapi"
    # replayed exchanges are journaled like any other, frame by frame
    assert [(e["method"], e["path"], e["status"]) for e in journal] == [
        ("POST", "/api/chat", 200), ("POST", "/api/chat", 200),
        ("POST", "/v1/chat/completions", 200), ("GET", "/api/tags", 200)]
    assert [e["frames_sent"] for e in journal] == [len(LINES), 0, len(EVENTS), 0]


def test_a_stream_reaches_the_client_while_the_server_still_streams(tmp_path: Path) -> None:
    with running_upstream() as (upstream, server), run_mock(
        "ollama", record_from=server.url, cassettes=str(tmp_path)
    ) as recorder, httpx.Client(timeout=20) as client, client.stream(
        "POST", recorder.url + "/api/generate", json={"model": "zebra", "prompt": "x"}
    ) as reply:
        lines = reply.iter_lines()
        first = next(lines)
        upstream.gate.set()  # only now may the server send the rest
        rest = list(lines)
    assert upstream.gate_opened_in_time is True
    assert [first, *rest] == [line.decode().rstrip("\n") for line in LINES]
    (cassette,) = tmp_path.iterdir()
    frames = yaml.safe_load(cassette.read_text())["response"]["frames"]
    assert [frame["text"].encode() for frame in frames] == LINES


def test_strict_miss_names_the_closest_cassette_and_the_difference(recorded) -> None:
    directory, _ = recorded
    changed = {**PLAIN, "options": {"seed": 7, "temperature": 0.9}}
    with run_mock("ollama", replay=str(directory), strict=True) as replayer:
        reply = httpx.post(replayer.url + "/api/chat", json=changed, timeout=10)
        other = httpx.post(replayer.url + "/api/embed", json={"model": "zebra"}, timeout=10)
    assert reply.status_code == 501
    body = reply.json()
    assert body["closest"].startswith("post-api-chat-zebra-")
    assert body["differences"] == [{"field": "body.options.temperature", "expected": 0.2,
                                    "got": 0.9}]
    assert body["closest"] in body["error"] and "expected 0.2, got 0.9" in body["error"]
    assert other.status_code == 501
    assert any(d["field"] == "path" for d in other.json()["differences"])


def test_without_strict_a_miss_gets_the_mocks_generated_reply(recorded) -> None:
    directory, _ = recorded
    changed = {**PLAIN, "model": "llama2"}
    with run_mock("ollama", replay=str(directory)) as replayer:
        reply = httpx.post(replayer.url + "/api/chat", json=changed, timeout=10)
    assert reply.status_code == 200
    assert reply.json()["model"] == "llama2" and "wombat" not in reply.text


@pytest.mark.parametrize(("ignored", "status"), [(None, 501), (["options.seed"], 200),
                                                 (["options.*"], 200)])
def test_ignored_fields_are_left_out_of_matching(recorded, ignored, status) -> None:
    directory, _ = recorded
    other_seed = {**PLAIN, "options": {"seed": 12345, "temperature": 0.2}}
    with run_mock("ollama", replay=str(directory), strict=True,
                  ignore_fields=ignored) as replayer:
        reply = httpx.post(replayer.url + "/api/chat", json=other_seed, timeout=10)
    assert reply.status_code == status
    if status == 200:
        assert reply.json()["message"]["content"] == "wombat 7"  # the recorded seed's reply


def test_replay_timing_sends_the_recorded_gaps(recorded) -> None:
    directory, _ = recorded
    cassettes = read_directory(directory)
    sse = next(c for c in cassettes if c.response.stream == "sse")
    call = _call("POST", "/v1/chat/completions", SSE_CHAT)
    paced = _run(Replayer(cassettes, timing=True).answer(None, call, None))
    prompt = _run(Replayer(cassettes).answer(None, call, None))
    times = [frame.at for frame in sse.response.frames]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert paced.delays == pytest.approx((0.0, *gaps))
    assert prompt.delays == () and prompt.frames == paced.frames
    with run_mock("ollama", replay=str(directory), replay_timing=True) as replayer:
        reply = httpx.post(replayer.url + "/v1/chat/completions", json=SSE_CHAT, timeout=10)
        (entry,) = replayer.control.journal()
    assert reply.content == b"".join(EVENTS)
    assert entry["frames_sent"] == len(EVENTS)
    assert entry["frame_times"] == sorted(entry["frame_times"])


def test_a_script_fault_applies_to_a_replayed_stream(recorded) -> None:
    directory, _ = recorded
    with run_mock("ollama", replay=str(directory)) as replayer:
        replayer.control.fault("truncated_stream", match={"path": "/v1/chat/completions"},
                               after_frames=1)
        reply = httpx.post(replayer.url + "/v1/chat/completions", json=SSE_CHAT, timeout=10)
    assert reply.content == EVENTS[0]


def test_an_unreachable_server_while_recording_gets_the_kinds_502(tmp_path: Path) -> None:
    with running_upstream() as (_, server):
        url = server.url
    with run_mock("ollama", record_from=url, cassettes=str(tmp_path)) as recorder:
        reply = httpx.post(recorder.url + "/api/chat", json=CHAT, timeout=10)
    assert reply.status_code == 502
    assert "could not reach" in reply.json()["error"]
    assert list(tmp_path.iterdir()) == []


def _call(method: str, path: str, body: Any) -> Call:
    raw = json.dumps(body).encode()
    return Call(method, path, {}, {}, {}, raw, MockSettings(), body)


def _run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)



def test_the_official_ollama_client_works_against_a_replaying_mock(tmp_path: Path) -> None:
    import ollama

    messages = [{"role": "user", "content": "Name a colour."}]
    with run_mock("ollama") as real, run_mock(  # the mock stands in for a real Ollama here
        "ollama", record_from=real.url, cassettes=str(tmp_path)
    ) as recorder:
        client = ollama.Client(host=recorder.url)
        whole = client.chat(model="llama2", messages=messages, options={"seed": 3})
        pieces = [part.message.content for part in client.chat(
            model="llama2", messages=messages, stream=True)]
        models = [model.model for model in client.list().models]
    with run_mock("ollama", replay=str(tmp_path), strict=True,
                  ignore_fields=["options.seed"]) as replayer:
        client = ollama.Client(host=replayer.url)
        again = client.chat(model="llama2", messages=messages, options={"seed": 99})
        streamed = [part.message.content for part in client.chat(
            model="llama2", messages=messages, stream=True)]
        assert [model.model for model in client.list().models] == models
        with pytest.raises(ollama.ResponseError) as missed:
            client.chat(model="mistral", messages=messages)
    assert again.message.content == whole.message.content
    assert streamed == pieces and len(pieces) > 2
    assert missed.value.status_code == 501 and "the closest is" in missed.value.error
