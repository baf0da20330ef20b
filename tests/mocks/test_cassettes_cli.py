"""``proxyproof mock`` with cassettes and scripts files, as a user runs it: a real process
recording from a server, another replaying with the server gone, and one-line usage errors."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from proxyproof import cli
from proxyproof.mocks.app import run_mock

CHAT = {"model": "llama2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "proxyproof", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _url(process: subprocess.Popen) -> str:
    for line in process.stdout:
        found = re.match(r"ollama: (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"no URL printed; stderr: {process.stderr.read()}")


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return out, err


def test_record_with_the_cli_then_replay_it_with_the_server_gone(tmp_path: Path) -> None:
    cassettes, stubs = tmp_path / "cassettes", tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "health.yaml").write_text(
        "match: {method: GET, path: /api/ps}\nresponse: {status: 503, json: {error: busy}}\n")
    with run_mock("ollama", api_key="real-key") as real:  # stands in for a real Ollama
        recorder = _start("mock", "ollama", "--port", "0", "--record-from", real.url,
                          "--cassettes", str(cassettes))
        try:
            url = _url(recorder)
            recorded = httpx.post(url + "/api/chat", json=CHAT, timeout=20,
                                  headers={"Authorization": "Bearer real-key"})
        finally:
            out, err = _stop(recorder)
    assert recorded.status_code == 200 and recorded.text.count("\n") > 2
    assert f"recording exchanges with {real.url} into {cassettes}/" in err
    (cassette,) = cassettes.iterdir()
    assert f"ollama recorded {cassette}" in out and "real-key" not in cassette.read_text()

    replayer = _start("mock", "ollama", "--port", "0", "--replay", str(cassettes), "--strict",
                      "--scripts", str(stubs))
    try:
        url = _url(replayer)
        replayed = httpx.post(url + "/api/chat", json=CHAT, timeout=20)
        missed = httpx.post(url + "/api/chat", json={**CHAT, "model": "mistral"}, timeout=20)
        scripted = httpx.get(url + "/api/ps", timeout=20)
    finally:
        _, err = _stop(replayer)
    assert replayed.content == recorded.content
    assert missed.status_code == 501 and missed.json()["closest"] == cassette.name
    assert scripted.status_code == 503 and scripted.json() == {"error": "busy"}
    assert "1 script(s) from" in err


def test_a_bad_scripts_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text('{"match": {"path": "/api/tags"}, "reply": "x"}')
    (tmp_path / "typo.yaml").write_text("match: {path: /api/chat}\nfault: {kind: lag}\n")
    run = subprocess.run([sys.executable, "-m", "proxyproof", "mock", "ollama", "--port", "0",
                          "--scripts", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"proxyproof mock: {tmp_path / 'typo.yaml'}: unknown fault kind "
                               "'lag'")
    assert run.stdout == ""  # nothing started listening


def _usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["mock", *args])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("args", "said"), [
    (["ollama", "--record-from", "http://127.0.0.1:9"], "--record-from needs --cassettes DIR"),
    (["ollama", "--cassettes", "{tmp}"], "to serve recorded exchanges use --replay DIR"),
    (["ollama", "--record-from", "http://127.0.0.1:9", "--cassettes", "{tmp}", "--replay",
      "{tmp}"], "--replay and --record-from do not go together"),
    (["ollama", "--replay", "{tmp}/missing"], "missing: no such directory"),
    (["ollama", "--replay", "{tmp}"], "no cassettes (*.yaml, *.yml, *.json) to replay"),
    (["all", "--replay", "{tmp}"], "--replay works with one mock, not 'all'"),
    (["ollama", "--strict"], "--strict: only with --replay DIR"),
    (["ollama", "--redact-header", "X-Key"], "--redact-header: only with --record-from URL"),
    (["ollama", "--record-from", "gpu-box:11434", "--cassettes", "{tmp}"],
     "needs an http:// or https:// URL"),
    (["ollama", "--record-from", "http://127.0.0.1:9", "--cassettes", "{tmp}", "--strict"],
     "--strict is for --replay"),
    (["ollama", "--replay", "{cassettes}", "--redact-header", "X-Key"],
     "--redact-header is for recording"),
    (["ollama", "--replay", "{cassettes}", "--ignore-field", "a..b"], "not a field path"),
    (["ollama", "--scripts", "{tmp}/missing"], "missing: no such directory"),
])
def test_options_that_do_not_fit_get_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], said: str
) -> None:
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    (cassettes / "get-api-tags.yaml").write_text(
        "request: {method: GET, path: /api/tags}\nresponse: {status: 200, body: '{}'}\n")
    filled = [arg.format(tmp=tmp_path / "empty", cassettes=cassettes) for arg in args]
    (tmp_path / "empty").mkdir()
    err = _usage_error(capsys, *filled)
    assert err.startswith("proxyproof mock: ") and said in err, err


def test_a_bad_cassette_is_named_with_its_problem(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    (tmp_path / "post-api-chat.yaml").write_text("request: {method: POST, path: /api/chat}\n")
    err = _usage_error(capsys, "ollama", "--replay", str(tmp_path))
    assert f"{tmp_path / 'post-api-chat.yaml'}: the cassette has no 'response'" in err


def test_help_explains_every_new_flag() -> None:
    text = cli.parser()._subparsers._group_actions[0].choices["mock"].format_help()
    for flag in ("--record-from URL", "--cassettes DIR", "--replay DIR", "--strict",
                 "--replay-timing", "--ignore-field PATH", "--redact-header NAME",
                 "--redact-query NAME", "--redact-field PATH", "--scripts DIR"):
        assert flag in text, flag
