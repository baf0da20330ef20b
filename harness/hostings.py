"""The four ways teams host Llama 2 behind Kong, each with its mock upstream and example config."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

EXAMPLES = resources.files("proxyproof.fixtures") / "examples"


@dataclass(frozen=True)
class Hosting:
    key: str  # how cases and command lines name it
    name: str  # shown in reports
    mock: str  # the mock upstream kind that plays the server
    llama2_format: str
    example: Traversable  # a Kong declarative config: /llama2-chat and /llama2-completions


HOSTINGS = (
    Hosting("huggingface", "HuggingFace", "huggingface", "raw",
            EXAMPLES / "huggingface-raw.yaml"),
    Hosting("ollama", "Ollama", "ollama", "ollama", EXAMPLES / "ollama.yaml"),
    Hosting("llamacpp", "llama.cpp", "llamacpp", "raw", EXAMPLES / "llamacpp-raw.yaml"),
    Hosting("gguf", "self-hosted GGUF", "openai", "openai", EXAMPLES / "gguf-openai.yaml"),
)
BY_KEY = {hosting.key: hosting for hosting in HOSTINGS}
