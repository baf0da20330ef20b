"""The package as users get it: the wheel, installed into a fresh virtual environment, used from a
directory outside the checkout — and side by side with PyPI's ``fixtures`` (testing-cabal), whose
top-level name the repository's ``fixtures/`` folder shares."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Building the wheel and installing it with its dependencies into a fresh venv is a minute or more
# on a busy machine: the project-wide 60 s would cut the fixtures short.
pytestmark = pytest.mark.timeout(600)
PIP = ("-m", "pip", "--disable-pip-version-check", "--quiet")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, *PIP, "wheel", "--no-deps", "-w", str(out),
         str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )
    (built,) = out.glob("proxyproof-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    python = home / "bin" / "python"
    subprocess.run([python, *PIP, "install", str(wheel), "pytest"], check=True, timeout=600)
    return home


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("elsewhere")


def _run(venv: Path, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_exactly_one_top_level_package(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"proxyproof"}
    for resource in ("oas.yaml", "ERRATA.md", "examples/ollama.yaml", "examples/gguf-openai.yaml"):
        assert f"proxyproof/fixtures/{resource}" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "proxyproof = proxyproof.pytest_plugin" in zipfile.ZipFile(wheel).read(
        entry_points).decode()


def test_check_runs_from_any_directory(venv: Path, elsewhere: Path):
    run = _run(venv, elsewhere, "proxyproof", "check", "--json", "-")
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout)["summary"]
    assert summary["fail"] == 0 and summary["pass"] >= 120


def test_a_mock_starts_and_answers(venv: Path, elsewhere: Path):
    mock = subprocess.Popen([str(venv / "bin" / "proxyproof"), "mock", "ollama", "--port", "0"],
                            cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = mock.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert url, line + mock.stderr.read()
        probe = (
            "import json, sys, urllib.request\n"
            f"print(json.load(urllib.request.urlopen('{url.group(0)}/api/version', timeout=10)))"
        )
        got = _run(venv, elsewhere, "python", "-c", probe)
        assert got.returncode == 0 and "version" in got.stdout, got.stderr
    finally:
        mock.terminate()
        mock.wait(timeout=10)


PYTEST_FILE = textwrap.dedent(
    """
    import json
    import urllib.request

    def test_the_fixture(mock_ollama):
        body = json.dumps({"model": "llama2", "prompt": "hi", "stream": False}).encode()
        request = urllib.request.Request(mock_ollama.url + "/api/generate", data=body)
        reply = json.load(urllib.request.urlopen(request, timeout=10))
        assert reply["done"] is True
        assert [e["path"] for e in mock_ollama.control.journal()] == ["/api/generate"]
    """
)


def _pytest_with_the_plugin(venv: Path, where: Path) -> subprocess.CompletedProcess:
    (where / "test_uses_the_plugin.py").write_text(PYTEST_FILE)
    return _run(venv, where, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "test_uses_the_plugin.py")


def test_the_pytest_plugin_serves_a_foreign_project(venv: Path, elsewhere: Path):
    run = _pytest_with_the_plugin(venv, elsewhere)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_pypi_fixtures_installs_beside_it(venv: Path, elsewhere: Path):
    subprocess.run([str(venv / "bin" / "python"), *PIP, "install", "fixtures"], check=True,
                   timeout=300)
    both = "import fixtures, proxyproof.fixtures as ours; print(fixtures.Fixture, ours.OAS_PATH)"
    run = _run(venv, elsewhere, "python", "-c", both)
    assert run.returncode == 0, run.stderr
    assert _pytest_with_the_plugin(venv, elsewhere).returncode == 0
