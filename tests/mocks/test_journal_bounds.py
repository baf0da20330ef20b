"""The journal's bounds: the latest N entries (older ones dropped and counted) and the first B
bytes of each body (flagged ``truncated`` with the length received)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from proxyproof.mocks.app import MockServer, make_settings, run_mock
from proxyproof.mocks.base import JOURNAL_BODY_BYTES, JOURNAL_ENTRIES
from proxyproof.mocks.journal import Journal

CHAT = {"model": "llama2", "messages": [{"role": "user", "content": "hi"}]}


def test_defaults() -> None:
    settings = make_settings()
    assert (settings.journal_entries, settings.journal_body_bytes) == (1000, 1024 * 1024)
    assert (JOURNAL_ENTRIES, JOURNAL_BODY_BYTES) == (1000, 1024 * 1024)
    assert Journal().summary() == {"entries": 0, "dropped": 0, "limit": 1000,
                                   "body_bytes": 1024 * 1024}


@pytest.mark.parametrize("bad", [{"journal_entries": 0}, {"journal_body_bytes": -1}])
def test_bounds_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        make_settings(**bad)


def test_old_entries_are_dropped_and_counted() -> None:
    with run_mock("openai", journal_entries=3) as mock, httpx.Client(base_url=mock.url) as http:
        for _ in range(5):
            http.post("/v1/chat/completions", json=CHAT)
        answer = http.get("/__mock__/journal").json()
        assert [entry["id"] for entry in answer["requests"]] == [3, 4, 5]
        assert answer["dropped"] == 2
        assert http.get("/__mock__/").json()["journal"] == {
            "entries": 3, "dropped": 2, "limit": 3, "body_bytes": 1024 * 1024}
        assert http.get("/__mock__/journal/1").status_code == 404
        assert http.get("/__mock__/journal/1/wait").status_code == 404  # gone, not awaited
        mock.control.clear_journal()  # clearing is not dropping
        assert http.get("/__mock__/journal").json() == {"requests": [], "dropped": 2}


def test_a_long_body_is_kept_truncated() -> None:
    with run_mock("openai", journal_body_bytes=64) as mock, httpx.Client(base_url=mock.url) as http:
        long_chat = {**CHAT, "messages": [{"role": "user", "content": "x" * 1000}]}
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert http.post("/v1/chat/completions", json=long_chat).status_code == 200  # whole
        short, long = mock.control.journal()
        assert short["body"] == CHAT and short["truncated"] is False
        assert long["truncated"] is True
        assert long["body_length"] > 1000 and len(long["body"].encode()) == 64
        assert long["body"].startswith('{"model":')


def test_zero_body_bytes_keeps_only_lengths() -> None:
    with run_mock("ollama", journal_body_bytes=0) as mock:
        body = b'{"model": "llama2", "prompt": "hi"}'
        httpx.post(mock.url + "/api/generate", content=body)
        entry = mock.control.journal()[0]
        assert (entry["body"], entry["truncated"], entry["body_length"]) == ("", True, len(body))


def test_memory_stays_bounded_under_big_bodies() -> None:
    """5 bodies of 4 MiB: the journal holds 5 x 1 KiB, not 20 MiB."""
    with run_mock("llamacpp", journal_body_bytes=1024) as mock:
        for _ in range(5):
            body = b'{"prompt":"' + b"a" * (4 * 1024 * 1024) + b'"}'
            httpx.post(mock.url + "/completion", content=body, timeout=30)
        entries = mock.control.journal()
        assert all(len(e["body"]) == 1024 and e["truncated"] for e in entries)


def test_a_long_journal_is_served_while_the_mock_keeps_answering() -> None:
    """The journal answer is encoded off the loop (past 64 entries): other requests are served
    meanwhile, and the answer is whole."""

    async def scenario() -> None:
        async with (
            MockServer("openai", journal_body_bytes=256 * 1024) as mock,
            httpx.AsyncClient(base_url=mock.url, timeout=30) as http,
        ):
            chat = {**CHAT, "messages": [{"role": "user", "content": "y" * 200_000}]}
            for _ in range(100):
                await http.post("/v1/chat/completions", json=chat)
            journal = asyncio.create_task(
                http.get("/__mock__/journal", params={"path": "/v1/chat/completions"}))
            models = await http.get("/v1/models")
            answer = await journal
        assert models.status_code == 200
        assert answer.status_code == 200 and len(answer.json()["requests"]) == 100
        assert all(entry["body"] == chat for entry in answer.json()["requests"])

    asyncio.run(scenario())


@pytest.mark.mock_settings(journal_entries=2, journal_body_bytes=8, control_token="t")
def test_the_pytest_marker_passes_the_bounds_and_token(mock_ollama) -> None:  # noqa: ANN001
    for _ in range(3):
        httpx.post(mock_ollama.url + "/api/generate", json={"model": "llama2", "prompt": "hi"})
    described = mock_ollama.control.describe()
    assert described["journal"] == {"entries": 2, "dropped": 1, "limit": 2, "body_bytes": 8}
    assert all(entry["truncated"] for entry in mock_ollama.control.journal())


def test_a_large_body_is_reparsed_when_shown() -> None:
    """Bodies over 64 KiB keep only their bytes (parsed JSON can be tens of times larger)."""
    with run_mock("openai") as mock:
        chat = {**CHAT, "messages": [{"role": "user", "content": "z"}] * 5000}
        assert httpx.post(mock.url + "/v1/chat/completions", json=chat).status_code == 200
        entry = mock.control.journal()[0]
        assert entry["body"] == chat and entry["truncated"] is False
        assert entry["body_length"] > 64 * 1024
