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
    assert plugins.get("proxyproof") == "proxyproof.mocks.pytest_plugin"


def test_importing_the_plugin_stays_cheap() -> None:
    probe = (
        "import sys, proxyproof.mocks.pytest_plugin\n"
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
