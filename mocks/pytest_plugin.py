"""pytest fixtures for the mock upstreams (registered through the ``pytest11`` entry point).

- ``mock_ollama``, ``mock_huggingface``, ``mock_llamacpp``, ``mock_openai``: a running mock for one
  test (a fresh server, so its journal starts empty): ``mock_openai.url``,
  ``mock_openai.control.journal()``. Settings come from an optional marker::

      @pytest.mark.mock_settings(api_key="k", models=["llama2", "mistral"], latency=0.1)
      def test_x(mock_openai): ...

  The journal bounds (``journal_entries``, ``journal_body_bytes``) and ``control_token`` are
  settings too; the fixture's ``control`` client carries the token.

- ``mock_server``: a factory for any number of mocks, all stopped after the test:
  ``mock_server("ollama", api_key="k")``.

- Cassettes (docs/cassettes.md): ``@pytest.mark.mock_settings(replay="cassettes/")`` makes the
  ``mock_*`` fixtures replay the recorded exchanges in that directory (relative to the test's
  file), strictly unless ``strict=False``: a request not on record gets a 501 naming the
  closest cassette. ``pytest --proxyproof-record=URL`` (or the marker's ``record_from=URL``)
  records, as pytest-recording's ``--record-mode=once`` does: a directory that has no cassettes
  when the run first uses it is recorded from the real server for the whole run; one that has
  them is replayed. Delete the directory to record again. ``scripts="stubs/"`` loads
  control-API scripts from files.

This module is imported by every pytest run in every project that installs proxyproof, so it
imports nothing heavy until a fixture is actually used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from proxyproof.mocks.app import RunningMock

# Per run: whether each cassette directory is being recorded or replayed (decided once).
_CASSETTE_MODES = pytest.StashKey[dict[Path, str]]()
_REPLAY_ONLY = ("strict", "replay_timing")
_RECORD_ONLY = ("redact_headers", "redact_query", "redact_fields")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("proxyproof", "proxyproof conformance catalogue")
    group.addoption("--proxyproof-record", nargs="?", const="", default=None, metavar="URL",
                    help="record the cassettes of mock_settings(replay=DIR) fixtures whose DIR "
                    "has none yet, from the real server at URL (or the marker's record_from=); "
                    "replay those that have (pytest-recording's --record-mode=once)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_settings(api_key=None, models=None, latency=0.0, journal_entries=1000, "
        "journal_body_bytes=1048576, control_token=None, replay=None, strict=True, "
        "replay_timing=False, ignore_fields=(), record_from=None, redact_headers=(), "
        "scripts=None): settings of the mock_* fixtures (cassettes: docs/cassettes.md)",
    )
    url = config.getoption("proxyproof_record", None)
    if url and not url.startswith(("http://", "https://")):
        raise pytest.UsageError(f"--proxyproof-record=URL takes the real server's http:// or "
                                f"https:// URL, got {url!r}")


def _marker_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("mock_settings")
    settings = dict(marker.kwargs) if marker else {}
    here = request.path.parent  # file paths in the marker are relative to the test's file
    if isinstance(settings.get("scripts"), str | Path):
        settings["scripts"] = str(here / settings["scripts"])
    if settings.get("replay") is not None:
        _record_or_replay(request.config, settings, (here / settings["replay"]).resolve())
    else:
        settings.pop("record_from", None)
    return settings


def _record_or_replay(config: pytest.Config, settings: dict[str, Any], directory: Path) -> None:
    """Turn ``replay=DIR`` into this run's recording or replaying of DIR."""
    from proxyproof.mocks.replayer import cassette_paths

    modes = config.stash.setdefault(_CASSETTE_MODES, {})
    option = config.getoption("proxyproof_record", None)
    if directory not in modes:
        recording = option is not None and not cassette_paths(directory)
        modes[directory] = "record" if recording else "replay"
    record_from = settings.pop("record_from", None)
    del settings["replay"]
    if modes[directory] == "record":
        url = option or record_from
        if not url:
            pytest.fail(f"{directory} is to be recorded but no server is named: use "
                        "--proxyproof-record=URL or mock_settings(record_from=URL)",
                        pytrace=False)
        for key in _REPLAY_ONLY:
            settings.pop(key, None)
        settings.update(record_from=url, cassettes=str(directory))
        return
    if not cassette_paths(directory):
        pytest.fail(f"no cassettes in {directory}: record them once with "
                    "pytest --proxyproof-record=URL", pytrace=False)
    for key in _RECORD_ONLY:
        settings.pop(key, None)
    settings.setdefault("strict", True)  # as VCR's once mode: what is not on record fails
    settings["replay"] = str(directory)


def _start(name: str, settings: dict[str, Any]) -> RunningMock:
    from proxyproof.mocks.app import run_mock

    return run_mock(name, **settings)


def _mock_fixture(name: str) -> Callable[..., Iterator[RunningMock]]:
    def fixture(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
        try:
            settings = _marker_settings(request)
            mock = _start(name, settings)
        except ValueError as problem:  # bad cassettes, scripts or settings: one line
            pytest.fail(f"mock_{name}: {problem}", pytrace=False)
        with mock:
            yield mock

    fixture.__name__ = f"mock_{name}"
    fixture.__doc__ = f"A running {name} mock for one test (settings: @pytest.mark.mock_settings)."
    return pytest.fixture(fixture)


mock_ollama = _mock_fixture("ollama")
mock_huggingface = _mock_fixture("huggingface")
mock_llamacpp = _mock_fixture("llamacpp")
mock_openai = _mock_fixture("openai")


@pytest.fixture
def mock_server() -> Iterator[Callable[..., RunningMock]]:
    """``mock_server("ollama", api_key="k")`` starts a mock; all are stopped after the test."""
    started: list[RunningMock] = []

    def start(name: str, **settings: Any) -> RunningMock:
        mock = _start(name, settings)
        started.append(mock)
        return mock

    yield start
    for mock in reversed(started):
        mock.stop()
