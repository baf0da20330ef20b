"""The pytest side of cassettes: ``mock_settings(replay=DIR)`` and ``--proxyproof-record=URL``,
run as a user's test suite: the first run records, the next replays with the server gone."""

from __future__ import annotations

import httpcore  # noqa: F401 (imported before pytester's in-process runs, which unload
import httpx  # the modules they import: httpx would then map a fresh httpcore's errors)
import pytest
from cassette_upstream import SECRET, running_upstream

pytest_plugins = ["pytester"]

INNER = f"""
import httpx
import pytest

pytestmark = pytest.mark.mock_settings(replay="cassettes/")
HEADERS = {{"Authorization": "Bearer {SECRET}"}}


def test_chat_streams(mock_ollama):
    reply = httpx.post(mock_ollama.url + "/api/chat", headers=HEADERS, timeout=10,
                       json={{"model": "zebra", "messages": [{{"role": "user", "content": "a"}}]}})
    assert reply.status_code == 200
    assert "quokka" in reply.text and "narwhal" in reply.text
    assert mock_ollama.control.journal()[0]["frames_sent"] == 3


def test_tags(mock_ollama):
    assert httpx.get(mock_ollama.url + "/api/tags", timeout=10).json()["models"][0][
        "name"] == "zebra:7b"
"""

CHANGED = """
import httpx
import pytest


@pytest.mark.mock_settings(replay="cassettes/")
def test_asks_something_not_on_record(mock_ollama):
    reply = httpx.post(mock_ollama.url + "/api/chat", timeout=10,
                       json={"model": "zebra", "messages": [{"role": "user", "content": "b"}]})
    assert reply.status_code == 501, reply.text
    assert reply.json()["differences"][0]["field"] == "body.messages.0.content"


@pytest.mark.mock_settings(replay="cassettes/", strict=False)
def test_lenient_gets_a_generated_reply(mock_ollama):
    reply = httpx.post(mock_ollama.url + "/api/chat", timeout=10, json={
        "model": "llama2", "messages": [{"role": "user", "content": "b"}], "stream": False})
    assert reply.status_code == 200 and reply.json()["model"] == "llama2"
"""


def test_the_first_run_records_and_the_next_replays_without_the_server(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inner=INNER)
    nothing = pytester.runpytest("-p", "no:cacheprovider")
    nothing.assert_outcomes(errors=2)
    nothing.stdout.fnmatch_lines(["*no cassettes in *cassettes: record them once with pytest "
                                  "--proxyproof-record=URL*"])

    with running_upstream() as (upstream, server):
        first = pytester.runpytest("-p", "no:cacheprovider", f"--proxyproof-record={server.url}")
        first.assert_outcomes(passed=2)
        assert upstream.authorizations == [f"Bearer {SECRET}"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/api/tags", timeout=5)

    cassettes = sorted(pytester.path.joinpath("cassettes").iterdir())
    assert [path.name.split("-")[:3] for path in cassettes] == [
        ["get", "api", "tags"], ["post", "api", "chat"]]
    assert all(SECRET not in path.read_text() for path in cassettes)

    # the server is gone: the same suite replays, with or without the option (once mode)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    again = pytester.runpytest("-p", "no:cacheprovider", f"--proxyproof-record={server.url}")
    again.assert_outcomes(passed=2)

    pytester.makepyfile(test_changed=CHANGED)
    pytester.runpytest("-p", "no:cacheprovider", "test_changed.py").assert_outcomes(passed=2)


def test_recording_needs_a_server_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    run = pytester.runpytest("-p", "no:cacheprovider", "--proxyproof-record")
    run.assert_outcomes(errors=2)
    run.stdout.fnmatch_lines(["*is to be recorded but no server is named*"])
    bad = pytester.runpytest("-p", "no:cacheprovider", "--proxyproof-record=gpu-box:11434")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--proxyproof-record=URL takes the real server's http://*"])
