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

This module is imported by every pytest run in every project that installs proxyproof, so it
imports nothing heavy until a fixture is actually used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from proxyproof.mocks.app import RunningMock


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mock_settings(api_key=None, models=None, latency=0.0, journal_entries=1000, "
        "journal_body_bytes=1048576, control_token=None): settings of the mock_* fixtures",
    )


def _marker_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("mock_settings")
    return dict(marker.kwargs) if marker else {}


def _start(name: str, settings: dict[str, Any]) -> RunningMock:
    from proxyproof.mocks.app import run_mock

    return run_mock(name, **settings)


def _mock_fixture(name: str) -> Callable[..., Iterator[RunningMock]]:
    def fixture(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
        with _start(name, _marker_settings(request)) as mock:
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
