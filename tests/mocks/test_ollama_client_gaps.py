"""The official ``ollama`` client against the Ollama mock: pull, delete, copy, show, version, as
v0.11.4 answers them for a known and an unknown model; the model list follows (per instance, the
control API's reset restores it); ``OLLAMA_HOST`` as Ollama's ``envconfig.Host`` reads it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import ollama
import pytest

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.mocks.ollama_host import parse


@pytest.fixture
def server() -> Iterator[RunningMock]:
    with run_mock("ollama") as mock:
        yield mock


@pytest.fixture
def client(server: RunningMock) -> ollama.Client:
    return ollama.Client(host=server.url)


def _names(client: ollama.Client) -> list[str]:
    return [model.model for model in client.list().models]


def test_version_is_the_one_the_mock_reproduces(client: ollama.Client, server: RunningMock) -> None:
    response = httpx.get(server.url + "/api/version")
    assert response.json() == {"version": "0.11.4"}
    assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_pull_streams_progress_and_adds_the_model(client: ollama.Client) -> None:
    lines = list(client.pull("mistral", stream=True))
    statuses = [line.status for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = [line for line in lines if line.digest]
    assert layers and all(line.status == f"pulling {line.digest[7:19]}" for line in layers)
    assert all(line.digest.startswith("sha256:") and line.total for line in layers)
    assert layers[0].completed is None  # omitempty before the first bytes
    assert any(line.completed == line.total for line in layers)
    assert "mistral:latest" in _names(client)
    assert client.show("mistral").details.family == "llama"


def test_pull_without_stream_answers_success(client: ollama.Client, server: RunningMock) -> None:
    assert client.pull("llama3", stream=False).status == "success"
    assert "llama3:latest" in _names(client)
    again = httpx.post(server.url + "/api/pull", json={"model": "llama3", "stream": False})
    assert (again.status_code, again.headers["content-type"], again.json()) == (
        200, "application/json", {"status": "success"})


def test_pull_of_a_known_model_finds_every_blob(server: RunningMock) -> None:
    response = httpx.post(server.url + "/api/pull", json={"model": "llama2"})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [httpx.Response(200, content=line).json() for line in response.content.splitlines()]
    assert all(line["completed"] == line["total"] for line in lines if "digest" in line)


def test_pull_of_an_unknown_model_fails_as_the_registry_does(
    client: ollama.Client, server: RunningMock
) -> None:
    with pytest.raises(ollama.ResponseError) as whole:
        client.pull("no-such-model-xyz", stream=False)
    assert whole.value.status_code == 500
    assert whole.value.error == "pull model manifest: file does not exist"
    streamed = client.pull("no-such-model-xyz", stream=True)
    assert next(streamed).status == "pulling manifest"
    with pytest.raises(ollama.ResponseError) as midstream:
        next(streamed)
    assert midstream.value.error == "pull model manifest: file does not exist"
    raw = httpx.post(server.url + "/api/pull", json={"model": "no-such-model-xyz"})
    assert raw.status_code == 200
    assert raw.text == ('{"status":"pulling manifest"}\n'
                        '{"error":"pull model manifest: file does not exist"}\n')
    bad = httpx.post(server.url + "/api/pull", json={"model": ""})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid model name"})
    assert _names(client) == ["llama2:latest"]


def test_delete_known_and_unknown(client: ollama.Client, server: RunningMock) -> None:
    client.pull("mistral", stream=False)
    assert client.delete("mistral").status == "success"
    assert "mistral:latest" not in _names(client)
    response = httpx.request("DELETE", server.url + "/api/delete", json={"model": "mistral"})
    assert response.status_code == 404
    assert response.json() == {"error": "model 'mistral' not found"}
    with pytest.raises(ollama.ResponseError) as gone:
        client.delete("ghost")
    assert (gone.value.status_code, gone.value.error) == (404, "model 'ghost' not found")


def test_delete_answers_an_empty_200(server: RunningMock) -> None:
    response = httpx.request("DELETE", server.url + "/api/delete", json={"model": "llama2"})
    assert (response.status_code, response.content) == (200, b"")
    chat = httpx.post(server.url + "/api/chat", json={
        "model": "llama2", "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 404


def test_copy_known_and_unknown(client: ollama.Client, server: RunningMock) -> None:
    assert client.copy("llama2", "llama2-backup").status == "success"
    assert _names(client) == ["llama2:latest", "llama2-backup:latest"]
    reply = client.chat(model="llama2-backup", messages=[{"role": "user", "content": "hi"}])
    assert reply.message.content
    with pytest.raises(ollama.ResponseError) as missing:
        client.copy("ghost", "ghost2")
    assert (missing.value.status_code, missing.value.error) == (404, 'model "ghost" not found')
    raw = httpx.post(server.url + "/api/copy", json={"source": "llama2", "destination": "x"})
    assert (raw.status_code, raw.content) == (200, b"")


def test_reset_restores_the_configured_models(client: ollama.Client, server: RunningMock) -> None:
    client.copy("llama2", "other")
    client.delete("llama2")
    assert _names(client) == ["other:latest"]
    server.control.reset()
    assert _names(client) == ["llama2:latest"]


def test_instances_keep_their_own_models(client: ollama.Client) -> None:
    client.pull("mistral", stream=False)
    with run_mock("ollama") as other:
        assert _names(ollama.Client(host=other.url)) == ["llama2:latest"]


def test_show_has_the_v0_11_4_shape(client: ollama.Client) -> None:
    shown = client.show("llama2")
    assert shown.details.format == "gguf" and shown.modified_at is not None
    assert shown.modelinfo["general.architecture"] == "llama"
    with pytest.raises(ollama.ResponseError) as missing:
        client.show("ghost")
    assert (missing.value.status_code, missing.value.error) == (404, "model 'ghost' not found")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:11500", ("127.0.0.1", 11500)),
        ("http://0.0.0.0:11434", ("0.0.0.0", 11434)),
        ("0.0.0.0", ("0.0.0.0", 11434)),
        ("http://0.0.0.0", ("0.0.0.0", 80)),  # an explicit scheme brings its own default port
        ("https://example.com", ("example.com", 443)),
        ("[::1]:11434", ("::1", 11434)),
        (" '127.0.0.1:9' ", ("127.0.0.1", 9)),
        ("localhost:notaport", ("localhost", 11434)),
        ("http://127.0.0.1:7/some/path", ("127.0.0.1", 7)),
        ("", ("127.0.0.1", 11434)),
    ],
)
def test_ollama_host_is_read_as_ollama_reads_it(value: str, expected: tuple[str, int]) -> None:
    assert parse(value) == expected


def test_mock_command_honours_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from proxyproof import cli
    from proxyproof.mocks import app

    seen: dict = {}
    monkeypatch.setattr(app, "serve_mocks", lambda names, **kw: seen.update(kw, names=names))

    def run(*argv: str) -> int:
        with pytest.raises(SystemExit) as done:
            cli.main(list(argv))
        return done.value.code

    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:11500")
    assert run("mock", "ollama") == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 11500)
    assert run("mock", "ollama", "--port", "0") == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 0)
    assert run("mock", "openai") == 0  # only the ollama mock reads it
    assert (seen["host"], seen["port"]) == ("127.0.0.1", None)
    monkeypatch.delenv("OLLAMA_HOST")
    assert run("mock", "ollama") == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", None)
