"""``proxyproof mock KIND --workers 2``: two processes on one port, one mock to the client.

Every request below goes over a fresh connection (urllib keeps none alive), so the kernel spreads
them over both workers; the journal's ``worker`` field says which one answered."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from proxyproof.cli import main
from proxyproof.harness.http import request
from proxyproof.mocks import MockControl

CHAT = json.dumps({"model": "llama2", "messages": [{"role": "user", "content": "hi"}],
                   "stream": False}).encode()
SPREAD = 32  # fresh connections: both workers answer some (each is a coin toss for the kernel)


@pytest.fixture(scope="module")
def mock() -> Iterator[MockControl]:
    server = subprocess.Popen(
        [sys.executable, "-m", "proxyproof", "mock", "ollama", "--workers", "2", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()  # "ollama: http://127.0.0.1:PORT", once both listen
    assert line.startswith("ollama: http://"), line + server.stderr.read()
    control = MockControl(line.split(": ", 1)[1].strip())
    try:
        yield control
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0


def _chat(url: str) -> tuple[int, bytes]:
    reply = request("POST", url + "/api/chat", CHAT, {"Content-Type": "application/json"})
    return reply.status, reply.body


def test_a_fault_applies_whichever_worker_answers(mock: MockControl) -> None:
    mock.reset()
    mock.script({"path": "/api/chat"}, fault={"kind": "status", "status": 503})
    statuses = {_chat(mock.url)[0] for _ in range(SPREAD)}
    journal = mock.journal(path="/api/chat")
    assert statuses == {503}
    assert {entry["worker"] for entry in journal} == {1, 2}  # both answered, both with the fault
    assert {entry["status"] for entry in journal} == {503}
    assert [entry["id"] for entry in journal] == sorted(entry["id"] for entry in journal)
    assert mock.scripts()[0]["hits"] == SPREAD


def test_a_script_with_times_is_used_up_across_workers(mock: MockControl) -> None:
    mock.reset()
    mock.script({"path": "/api/chat"}, times=5, reply="scripted words")
    bodies = [json.loads(_chat(mock.url)[1]) for _ in range(SPREAD)]
    scripted = [b for b in bodies if b["message"]["content"] == "scripted words"]
    journal = mock.journal(path="/api/chat")
    assert len(scripted) == 5  # not 5 per worker
    assert {entry["worker"] for entry in journal} == {1, 2}
    listed = mock.scripts()[0]
    assert (listed["remaining"], listed["hits"]) == (0, 5)


def test_the_journal_is_merged_and_reset_everywhere(mock: MockControl) -> None:
    mock.reset()
    for _ in range(SPREAD):
        _chat(mock.url)
    journal = mock.journal()
    assert len(journal) == SPREAD and {entry["worker"] for entry in journal} == {1, 2}
    assert mock.describe()["journal"]["entries"] == SPREAD
    assert mock.describe()["workers"] == 2
    other = next(e for e in journal if e["worker"] != journal[-1]["worker"])
    assert mock.entry(other["id"])["worker"] == other["worker"]  # asked of whichever has it
    assert mock.wait(other["id"])["outcome"] == "completed"
    assert len(mock.journal(since=journal[-2]["id"])) == 1
    mock.reset()
    assert mock.journal() == [] and mock.describe()["journal"]["entries"] == 0


def test_a_pulled_model_is_every_workers(mock: MockControl) -> None:
    mock.reset()
    pulled = request("POST", mock.url + "/api/pull",
                     json.dumps({"model": "mistral", "stream": False}).encode())
    assert pulled.status == 200
    seen = {tuple(m["name"] for m in request("GET", mock.url + "/api/tags").json()["models"])
            for _ in range(SPREAD // 4)}
    assert all("mistral:latest" in names for names in seen)
    mock.reset()
    assert "mistral:latest" not in [m["name"] for m in
                                    request("GET", mock.url + "/api/tags").json()["models"]]


def test_recording_with_workers_is_refused_in_one_line(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["mock", "ollama", "--workers", "2", "--port", "0",
              "--record-from", "http://127.0.0.1:9", "--cassettes", str(tmp_path)])
    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert error.count("\n") == 1 and "--record-from" in error
