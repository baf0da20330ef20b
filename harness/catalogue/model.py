"""A conformance case, as data: the gateway route it needs, the client request, what the mock
upstream does, and what both sides must see — in the reference flavour and, where Kong differs,
in Kong's flavour with the deviation's name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROUTES = ("chat", "completions")
ROUTE_TYPES = {"chat": "llm/v1/chat", "completions": "llm/v1/completions"}
# Where a case's upstream_url points: the hosting's mock (default), or a place that fails.
UPSTREAMS = ("mock", "unreachable", "unresolvable")


@dataclass(frozen=True)
class ClientRequest:
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None  # JSON (the seed request of the route when omitted)
    raw_body: str | None = None  # sent as is instead of JSON
    content_type: str | None = "application/json"


@dataclass(frozen=True)
class Expectation:
    """What must hold. Every field is optional; ``oracle`` lets the independent oracle predict
    the upstream body and the client reply from the route's config and the request."""

    status: int | list[int] | None = None  # a list: any of these
    error: str | None = None  # {"error": {"message": <this>}}
    message: str | None = None  # Kong's core error body {"message": <this>, "request_id"}
    body: Any = None  # the client body as JSON, exactly
    body_text: str | None = None  # the client body as text, exactly
    body_contains: dict[str, Any] | None = None  # a JSON subset of the client body
    headers: dict[str, Any] = field(default_factory=dict)  # value, "*" present, None absent
    schema: str | None = None  # the OAS schema the client body (or each chunk) validates against
    stream: dict[str, Any] = field(default_factory=dict)  # see harness/checks.py
    upstream_count: int | None = None  # requests the mock received (default: 1 if reachable)
    upstream: dict[str, Any] = field(default_factory=dict)  # method, path, headers, query, body
    oracle: bool = False


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    features: tuple[str, ...]
    hosting: str  # a hosting key: huggingface, ollama, llamacpp, gguf
    route: str  # chat | completions
    request: ClientRequest
    expect: Expectation
    kong: Expectation | None = None  # Kong's flavour, when it differs from the reference
    deviation: str = ""  # the name of Kong's deviation, reported instead of a failure
    plugin: str = "ai-proxy"  # or ai-proxy-advanced (one target)
    config: dict[str, Any] = field(default_factory=dict)  # merged into the hosting's plugin config
    service: dict[str, Any] = field(default_factory=dict)  # extra service fields (timeouts)
    upstream: str = "mock"  # one of UPSTREAMS, or a path on the mock
    script: dict[str, Any] | None = None  # a mock control-API script in force for this case
    source: str = ""  # file it came from

    @property
    def route_type(self) -> str:
        return ROUTE_TYPES[self.route]
