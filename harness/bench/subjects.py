"""Other gateways measured in the same run as the bundled proxy (``--gateway``).

Three kinds:

- ``floor``: the least a proxy written in Python does (``floor.py``), per hosting, sending what
  the bundled proxy sent upstream: what separates the bundled proxy from it is its own work;
- ``litellm``: a LiteLLM proxy the benchmark starts itself, per hosting it can express (Ollama,
  self-hosted GGUF), through the harness's adapter (``adapters.litellm``: the hosting's example
  config as a LiteLLM ``model_list``), pinned to the servers' CPUs, pointed at the same mock as
  the bundled proxy;
- ``NAME=URL``: a gateway already running, ``URL`` its OpenAI-style chat endpoint on 127.0.0.1.
  It must send to the benchmark's mocks, which then listen on their usual ports (Ollama 11434,
  OpenAI-style 8082: what a gateway set up for a local server uses); which mock it reached is
  read from their journals.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..adapters.litellm import LAUNCH, LiteLLMError, LiteLLMGateway
from .http1 import BenchRequest

FLOOR = "floor"
STARTED = {"litellm": "LiteLLM proxy (started by the benchmark)",
           FLOOR: "a bare pass-through of the benchmark's own, no checks (floor.py)"}
MODEL = "llama2"  # the model the example configs name; LiteLLM entries are named after it
ROUTE = "llama2-chat"  # the example configs' chat route: the LiteLLM entry's tag
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    url: str = ""  # "" = one the benchmark starts (a name in STARTED)
    # sent with every request (e.g. the gateway's key); never in a report
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def shown(self) -> dict[str, str]:
        """What a report may say about it: no header values."""
        return {"name": self.name, "url": self.url}

    def with_header(self, text: str) -> GatewaySpec:
        """``HEADER: VALUE`` added; ValueError for a malformed one."""
        name, colon, value = text.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()) or any(
                c in value for c in "\r\n"):
            raise ValueError(f"--gateway-header for {self.name}: give NAME=HEADER: VALUE")
        if not self.external:
            raise ValueError(f"--gateway-header: {self.name} is started by the benchmark, which "
                             "sets its headers itself")
        return replace(self, headers=(*self.headers, (name.strip(), value.strip())))

    @classmethod
    def parse(cls, text: str) -> GatewaySpec:
        """``litellm`` or ``NAME=URL``; ValueError with what is wrong."""
        name, equals, url = text.partition("=")
        name = name.strip()
        if not _NAME.match(name) or name == "proxyproof":
            raise ValueError(f"--gateway {text!r}: the name must be letters, digits, '.', '_' "
                             "or '-' (and not 'proxyproof')")
        if not equals:
            if name not in STARTED:
                raise ValueError(f"--gateway {text!r}: give NAME=URL for a running gateway, or "
                                 f"one the benchmark starts: {', '.join(STARTED)}")
            return cls(name)
        BenchRequest(url.strip(), b"")  # ValueError unless http://127.0.0.1:PORT/...
        return cls(name, url.strip())

    @property
    def external(self) -> bool:
        return bool(self.url)


def with_headers(specs: Sequence[GatewaySpec], texts: Sequence[str]) -> tuple[GatewaySpec, ...]:
    """``specs`` with each ``NAME=HEADER: VALUE`` of ``texts`` added to the gateway NAME."""
    found = {spec.name: spec for spec in specs}
    for text in texts:
        name, equals, header = text.partition("=")
        if not equals or name.strip() not in found:
            raise ValueError(f"--gateway-header {text.split(':')[0]!r}: give NAME=HEADER: VALUE "
                             "for a NAME given with --gateway")
        found[name.strip()] = found[name.strip()].with_header(header)
    return tuple(found.values())


def external_request(spec: GatewaySpec, body: dict) -> BenchRequest:
    """The chat request for a running gateway: OpenAI-style, naming the model."""
    return BenchRequest(spec.url, json.dumps({**body, "model": MODEL}).encode(),
                        (("Content-Type", "application/json"), *spec.headers))


class StartedLiteLLM:
    """A LiteLLM proxy for one hosting's config, on ``cpus`` where taskset allows."""

    def __init__(self, config: dict, cpus: Sequence[int]) -> None:
        if importlib.util.find_spec("litellm") is None:
            raise LiteLLMError("LiteLLM is not installed in this environment: "
                               "pip install 'litellm[proxy]'")
        command = [sys.executable, "-c", LAUNCH]
        taskset = shutil.which("taskset")
        if cpus and taskset:
            command = [taskset, "-c", ",".join(map(str, cpus)), *command]
        self._gateway = LiteLLMGateway(command=command)
        self.url = self._gateway.load(config)

    @property
    def pid(self) -> int:
        process = self._gateway.process
        assert process is not None
        return process.pid  # taskset execs the interpreter: the same process

    def request(self, body: dict) -> BenchRequest:
        """``body`` as LiteLLM takes it: its chat endpoint, the model, the entry's tag, the key."""
        headers = (("Content-Type", "application/json"),
                   ("Authorization", f"Bearer {self._gateway.master_key}"),
                   ("x-litellm-tags", ROUTE))
        return BenchRequest(self.url + "/v1/chat/completions",
                            json.dumps({**body, "model": MODEL}).encode(), headers)

    def close(self) -> None:
        self._gateway.close()

    def __enter__(self) -> StartedLiteLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
