"""The control token (``--control-token``): every ``/__mock__/`` route requires it, the emulated
API does not, and it never shows in the journal or the logs. And the warning a mock prints when
it listens beyond loopback."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import httpx
import pytest

from proxyproof.mocks.app import run_mock
from proxyproof.mocks.control import MockControl
from proxyproof.mocks.exposure import exposure_warning, is_loopback, warn_if_exposed

TOKEN = "s3cret-control-token"
CHAT = {"model": "llama2", "messages": [{"role": "user", "content": "hi"}]}
ROUTES = [("GET", "/__mock__"), ("GET", "/__mock__/"), ("GET", "/__mock__/journal"),
          ("DELETE", "/__mock__/journal"), ("GET", "/__mock__/journal/1"),
          ("GET", "/__mock__/journal/1/wait?timeout=0"), ("GET", "/__mock__/scripts"),
          ("POST", "/__mock__/scripts"), ("DELETE", "/__mock__/scripts"),
          ("POST", "/__mock__/reset"), ("GET", "/__mock__/nothing-here")]


@pytest.mark.parametrize("name", ["openai", "ollama", "huggingface", "llamacpp"])
def test_every_control_route_requires_the_token(name: str) -> None:
    with run_mock(name, control_token=TOKEN) as mock:
        for method, path in ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                            {"Authorization": f"Basic {TOKEN}"}):
                response = httpx.request(method, mock.url + path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json() == {"error": "the control API requires "
                                           "'Authorization: Bearer <control token>'"}
                assert TOKEN not in response.text
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(mock.url + "/__mock__/journal", headers=good).status_code == 200
        assert httpx.get(mock.url + "/__mock__/", headers=good).json()["control_token_set"]


def test_the_emulated_api_is_unaffected_and_the_token_is_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines: list[str] = []
    with caplog.at_level(logging.DEBUG), run_mock("openai", control_token=TOKEN,
                                                 log=lines.append) as mock:
        plain = httpx.post(mock.url + "/v1/chat/completions", json=CHAT)
        assert plain.status_code == 200
        carrying = httpx.post(mock.url + "/v1/chat/completions", json=CHAT,
                              headers={"X-Leak": f"Bearer {TOKEN}"})
        assert carrying.status_code == 200
        journal = mock.control.journal()  # the runner's client carries the token
        assert len(journal) == 2  # control requests are not journaled
        assert journal[1]["headers"]["X-Leak"] == "***"
        assert TOKEN not in str(journal)
        assert TOKEN not in httpx.get(mock.url + "/__mock__/journal",
                                      headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert TOKEN not in caplog.text and not any(TOKEN in line for line in lines)


def test_a_client_without_the_token_gets_permission_error() -> None:
    with run_mock("openai", control_token=TOKEN) as mock:
        with pytest.raises(PermissionError):
            MockControl(mock.url).journal()
        assert MockControl(mock.url, token=TOKEN).journal() == []


def test_no_token_means_an_open_control_api() -> None:
    with run_mock("openai") as mock:
        assert httpx.get(mock.url + "/__mock__/journal").status_code == 200


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError):
        run_mock("openai", control_token=" ")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_hosts_get_no_warning(host: str) -> None:
    assert is_loopback(host) and exposure_warning(host, 8080, token_set=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "mock.example", ""])
def test_other_hosts_get_one_warning_line(host: str) -> None:
    line = exposure_warning(host, 8080, token_set=False)
    assert line is not None and "\n" not in line
    assert "is reachable from other machines" in line and ":8080" in line
    assert "credentials included" in line and "--control-token" in line
    protected = exposure_warning(host, 8080, token_set=True)
    assert protected is not None and "requires the control token" in protected
    stream = io.StringIO()
    assert warn_if_exposed(host, 8080, token_set=False, stream=stream) == line
    assert stream.getvalue() == line + "\n"


def test_a_mock_bound_to_every_address_warns_on_stderr(capsys: pytest.CaptureFixture) -> None:
    try:
        mock = run_mock("openai", host="0.0.0.0", port=0)
    except OSError as error:  # a sandbox without that address
        pytest.skip(f"cannot bind 0.0.0.0: {error}")
    with mock:
        port = mock.url.rsplit(":", 1)[1]
        # talk to it over loopback only
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1
    assert f"the control API on 0.0.0.0:{port} is reachable from other machines" in err


def test_the_command_parses_the_journal_and_token_flags() -> None:
    from proxyproof.cli import parser

    args = parser().parse_args(["mock", "openai", "--journal-entries", "5",
                                "--journal-body-bytes", "0", "--control-token", "t"])
    assert (args.journal_entries, args.journal_body_bytes, args.control_token) == (5, 0, "t")
    defaults = parser().parse_args(["mock", "openai"])
    assert (defaults.journal_entries, defaults.journal_body_bytes) == (1000, 1024 * 1024)
    with pytest.raises(SystemExit):
        parser().parse_args(["mock", "openai", "--journal-entries", "0"])


def test_the_command_takes_the_token_from_the_environment() -> None:
    env = {**os.environ, "PROXYPROOF_CONTROL_TOKEN": TOKEN}
    command = [sys.executable, "-m", "proxyproof", "mock", "openai", "--port", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(": ", 1)[1].strip()
        assert httpx.get(url + "/__mock__/journal").status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "/__mock__/journal", headers=good).status_code == 200
        assert httpx.get(url + "/v1/models").status_code == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=20)
    assert TOKEN not in err and "warning" not in err  # loopback: no warning
