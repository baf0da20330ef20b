"""The pytest plugin: fixtures in this project, in a foreign project, and a cheap import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

from proxyproof.mocks import KIND_NAMES


@pytest.mark.parametrize("name", KIND_NAMES)
def test_each_mock_fixture_is_a_fresh_running_mock(
    name: str, request: pytest.FixtureRequest
) -> None:
    mock = request.getfixturevalue(f"mock_{name}")
    assert mock.kind.name == name
    assert mock.control.journal() == []
    httpx.get(mock.url + "/v1/models", timeout=10)
    assert [e["path"] for e in mock.control.journal()] == ["/v1/models"]


@pytest.mark.mock_settings(api_key="marker-key", models=["mistral"])
def test_the_marker_sets_the_fixture_settings(mock_openai) -> None:
    assert mock_openai.settings.models == ("mistral",)
    url = mock_openai.url + "/v1/models"
    assert httpx.get(url, timeout=10).status_code == 401
    reply = httpx.get(url, headers={"Authorization": "Bearer marker-key"}, timeout=10)
    assert [m["id"] for m in reply.json()["data"]] == ["mistral"]


def test_the_factory_starts_any_number_of_mocks(mock_server) -> None:
    first = mock_server("openai", api_key="k")
    second = mock_server("ollama")
    assert first.url != second.url
    assert httpx.get(first.url + "/v1/models", timeout=10).status_code == 401
    assert httpx.get(second.url + "/", timeout=10).text == "Ollama is running"


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("proxyproof") == "proxyproof.pytest_plugin"


def test_importing_the_plugin_stays_cheap() -> None:
    probe = (
        "import sys, proxyproof.pytest_plugin\n"
        "heavy = ('aiohttp', 'httpx', 'proxyproof.mocks.app', 'proxyproof.mocks.control')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_a_foreign_project_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_foreign.py").write_text(
        textwrap.dedent(
            """
            import httpx
            import pytest

            URLS = []

            @pytest.mark.mock_settings(models=["phi"])
            def test_uses_the_fixtures(mock_llamacpp, mock_server):
                other = mock_server("huggingface")
                URLS.extend([mock_llamacpp.url, other.url])
                models = httpx.get(mock_llamacpp.url + "/v1/models").json()
                assert models["data"][0]["id"] == "phi"

            def test_they_were_stopped():
                for url in URLS:
                    with pytest.raises(httpx.ConnectError):
                        httpx.get(url + "/health", timeout=5)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_foreign.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def _pytest_in(where: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args],
        cwd=where, capture_output=True, text=True, timeout=120,
    )


def test_the_catalogue_runs_as_pytest_tests(tmp_path: Path) -> None:
    run = _pytest_in(tmp_path, "--proxyproof-catalogue", "--proxyproof-profile", "seed")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "8 passed" in run.stdout
    assert "PASSED ::seed.ollama.chat" in run.stdout and "warning" not in run.stdout


def test_pytest_k_and_kong_deviations(tmp_path: Path) -> None:
    run = _pytest_in(tmp_path, "--proxyproof-catalogue", "--proxyproof-kong-compat",
                     "--proxyproof-profile", "seed", "-k", "huggingface")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout and "6 deselected" in run.stdout
    assert "proxyproof: Kong deviations (not failures)" in run.stdout
    assert "HuggingFace replies fail with 500" in run.stdout


def test_a_failing_case_shows_its_diff(tmp_path: Path) -> None:
    kong = textwrap.dedent(
        """
        _format_version: "3.0"
        services:
          - name: s
            url: http://127.0.0.1:9
            routes:
              - name: chat
                paths: [/chat]
                plugins:
                  - name: ai-proxy
                    config:
                      route_type: llm/v1/chat
                      model: {provider: llama2, name: llama2,
                              options: {llama2_format: ollama,
                                        upstream_url: "http://127.0.0.1:1/api/chat"}}
        """
    )
    (tmp_path / "kong.yaml").write_text(kong)
    run = _pytest_in(tmp_path, "--proxyproof-catalogue", "--proxyproof-config", "kong.yaml",
                     "-k", "seed")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "seed.ollama.chat@chat" in run.stdout
