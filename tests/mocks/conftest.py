"""Shared fixtures for the mock tests.

``mock`` is a running mock chosen by indirect parametrisation, by name or with settings::

    @pytest.mark.parametrize("mock", ["ollama", {"name": "openai", "api_key": "k"}], indirect=True)
    def test_x(mock, http): ...

Without parametrisation it is the OpenAI-style mock. ``http`` is an ``httpx.Client`` whose base
URL is that mock. The plugin's ``mock_server`` factory and ``mock_<name>`` fixtures work too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from proxyproof.mocks.app import RunningMock, run_mock


@pytest.fixture
def mock(request: pytest.FixtureRequest) -> Iterator[RunningMock]:
    spec: Any = getattr(request, "param", "openai")
    settings = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = settings.pop("name")
    with run_mock(name, **settings) as server:
        yield server


@pytest.fixture
def http(mock: RunningMock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock.url, timeout=10) as client:
        yield client


def parse_sse(text: str) -> list[Any]:
    """The data payloads of a complete SSE body (JSON decoded; ``[DONE]`` kept as a string)."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


@pytest.fixture
def sse() -> Callable[[str], list[Any]]:
    """``sse(response.text)``: the decoded events of an SSE body."""
    return parse_sse


@pytest.fixture
def schema() -> Callable[[str, Any], None]:
    """``schema("OpenAIChatResponse", body)``: validate against ``fixtures/oas.yaml``."""
    from proxyproof.fixtures import validate

    return validate
