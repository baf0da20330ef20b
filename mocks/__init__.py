"""Protocol-faithful mock upstreams: HuggingFace (Inference API + TGI), Ollama, llama.cpp and an
OpenAI-style server, each with a request journal and scriptable faults under ``/__mock__/``.

Public API (implemented in ``proxyproof.mocks.app`` and ``proxyproof.mocks.control``, imported on
first use so that ``import proxyproof.mocks`` — and the pytest plugin — stay cheap):

- ``KIND_NAMES`` and ``kind(name)``: the servers and their ``MockKind`` description.
- ``mock_app(name, settings)``: the aiohttp application of one mock.
- ``MockServer(name, **settings)``: ``async with`` it in a running loop; ``.url``, ``.control``.
- ``run_mock(name, **settings)``: the same on a background thread for synchronous code;
  ``with run_mock("ollama") as mock: mock.url, mock.control.journal()``.
- ``serve_mocks(names, port=..., api_key=..., models=..., latency=...)``: the foreground server
  behind ``proxyproof mock``.
- ``MockControl(url)``: a small synchronous client of a mock's control API.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import MockKind, MockSettings

KIND_NAMES = ("ollama", "huggingface", "llamacpp", "openai")

_LAZY = {
    "mock_app": ".app",
    "MockServer": ".app",
    "RunningMock": ".app",
    "run_mock": ".app",
    "serve_mocks": ".app",
    "MockControl": ".control",
}


def kind(name: str) -> MockKind:
    if name not in KIND_NAMES:
        raise ValueError(f"unknown mock {name!r}; choose one of {', '.join(KIND_NAMES)}")
    return importlib.import_module(f".{name}", __name__).KIND


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KIND_NAMES", "MockKind", "MockSettings", "kind", *_LAZY]
