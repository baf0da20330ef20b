"""The proxy's domain model: what a loaded config says, as typed values.

The config readers (``plugin_config``, ``declarative``) build these; everything else reads them.
The constants name the only provider, route types and formats this proxy serves, so no other
module spells them out.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from random import getrandbits

PROVIDER = "llama2"  # the only provider this proxy serves

AI_PROXY = "ai-proxy"
AI_PROXY_ADVANCED = "ai-proxy-advanced"
AI_PLUGINS = (AI_PROXY, AI_PROXY_ADVANCED)

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
SUPPORTED_ROUTE_TYPES = (CHAT, COMPLETIONS)

RAW = "raw"
OLLAMA = "ollama"
OPENAI = "openai"
LLAMA2_FORMATS = (RAW, OPENAI, OLLAMA)

# The tuning options a config may set; a configured value overrides the client's.
TUNING_FIELDS = ("max_tokens", "temperature", "top_p", "top_k")

DEFAULT_TIMEOUT_MS = 60000  # Kong's connect, read and write timeouts
DEFAULT_RETRIES = 5  # Kong's service default

# AI Proxy Advanced's balancer (kong_semantics §8; docs/balancer.md).
ROUND_ROBIN = "round-robin"
CONSISTENT_HASHING = "consistent-hashing"
LEAST_CONNECTIONS = "least-connections"
LOWEST_LATENCY = "lowest-latency"
LOWEST_USAGE = "lowest-usage"
PRIORITY = "priority"
SEMANTIC = "semantic"
DEFAULT_WEIGHT = 100
CATCHALL = "CATCHALL"  # the description of a semantic fallback target


@dataclass(frozen=True)
class Auth:
    header_name: str | None = None
    header_value: str | None = field(default=None, repr=False)  # a secret: never shown
    param_name: str | None = None
    param_value: str | None = field(default=None, repr=False)  # a secret: never shown
    param_location: str | None = None  # "query" | "body"
    allow_override: bool = False

    @property
    def header(self) -> tuple[str, str] | None:
        if self.header_name and self.header_value is not None:
            return self.header_name, self.header_value
        return None

    @property
    def param(self) -> tuple[str, str, str] | None:
        if self.param_name and self.param_value is not None and self.param_location:
            return self.param_name, self.param_value, self.param_location
        return None


@dataclass(frozen=True)
class ModelOptions:
    llama2_format: str
    upstream_url: str  # may hold $(headers.x) / $(uri_captures.x) / $(query_params.x) templates
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    input_cost: float | None = None
    output_cost: float | None = None

    @cached_property
    def tuning(self) -> dict[str, float | int]:
        """The configured tuning options, computed once: every request merges them."""
        values = {name: getattr(self, name) for name in TUNING_FIELDS}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Target:
    """Kong's word for what an AI plugin sends requests to: a model behind an upstream_url."""

    route_type: str
    model_name: str | None  # may hold a template; None: the client names the model
    options: ModelOptions
    auth: Auth = Auth()
    log_statistics: bool = False
    log_payloads: bool = False
    weight: int = DEFAULT_WEIGHT  # AI Proxy Advanced: share of traffic, or priority tier
    description: str | None = None  # AI Proxy Advanced: what semantic routing matches


@dataclass(frozen=True)
class Balancer:
    """AI Proxy Advanced's ``balancer``: how a target is chosen, retried and ejected.

    Timeouts, retries and criteria left unset are the route's service's (``UpstreamPolicy``).
    """

    algorithm: str = ROUND_ROBIN
    retries: int | None = None
    connect_timeout: int | None = None
    read_timeout: int | None = None
    write_timeout: int | None = None
    failover_criteria: tuple[str, ...] | None = None
    max_fails: int = 0  # 0: no circuit breaker
    fail_timeout: int = 10000  # ms: how long an ejected target is skipped
    hash_on_header: str = "X-Kong-LLM-Request-ID"
    latency_strategy: str = "tpot"
    tokens_count_strategy: str = "total-tokens"
    slots: int = 10000


@dataclass(frozen=True)
class Embeddings:
    """Where semantic routing gets its vectors: an OpenAI-style embeddings API."""

    provider: str
    model_name: str
    upstream_url: str
    auth: Auth = Auth()


@dataclass(frozen=True)
class VectorDb:
    """How semantic routing compares vectors (the index itself is in process)."""

    dimensions: int
    threshold: float  # the largest distance that still matches
    distance_metric: str  # "cosine" | "euclidean"


@dataclass(frozen=True)
class AiPlugin:
    kind: str  # AI_PROXY | AI_PROXY_ADVANCED
    target: Target  # the first (for ai-proxy, the only) target
    response_streaming: str = "allow"
    model_name_header: bool = True
    max_request_body_size: int = 8192  # bytes; 0 = unlimited
    balancer: Balancer = Balancer()
    targets: tuple[Target, ...] = ()  # every target, ``target`` first; filled in when left out
    embeddings: Embeddings | None = None
    vectordb: VectorDb | None = None

    def __post_init__(self) -> None:
        if not self.targets:
            object.__setattr__(self, "targets", (self.target,))


@dataclass(frozen=True)
class UpstreamPolicy:
    """Per-attempt timeouts (milliseconds) and retries for a route's upstream calls."""

    connect_timeout: int = DEFAULT_TIMEOUT_MS
    read_timeout: int = DEFAULT_TIMEOUT_MS
    write_timeout: int = DEFAULT_TIMEOUT_MS
    retries: int = DEFAULT_RETRIES
    failover_criteria: tuple[str, ...] = ("error", "timeout")


@dataclass(frozen=True)
class PathRule:
    text: str  # as written in the config
    regex: re.Pattern[str] | None = None  # for Kong's `~` paths

    @property
    def is_regex(self) -> bool:
        return self.regex is not None


@dataclass(frozen=True)
class Route:
    """Kong's route: where requests match, and the AI plugin that serves them."""

    name: str  # the route's name, or its place in the file
    paths: tuple[PathRule, ...]
    methods: tuple[str, ...] = ()  # empty: any method
    hosts: tuple[str, ...] = ()  # empty: any host; "*.example.com" wildcards allowed
    regex_priority: int = 0
    plugin: AiPlugin | None = None  # None: no AI plugin, the route answers with an error
    upstream: UpstreamPolicy = UpstreamPolicy()


def fresh_id() -> str:
    """32 hex digits, as ``uuid4().hex`` has. Ids must be unique, not secret, so they come from
    ``random`` (seeded from the system, and again in each forked worker), not from
    ``os.urandom``: a seventh of ``uuid4``'s cost, on every request and reply."""
    return f"{getrandbits(128):032x}"


@dataclass(slots=True)
class ReplyStamp:
    """The ``id`` and ``created`` of a reply the proxy writes itself. The caller mints it, so the
    codecs and the stream encoder that use it stay pure functions."""

    id: str
    created: int  # Unix seconds

    @classmethod
    def mint(cls, route_type: str) -> ReplyStamp:
        """A fresh id (OpenAI's prefix for the route type and ``fresh_id``) and the clock's
        current second."""
        prefix = "chatcmpl" if route_type == CHAT else "cmpl"
        return cls(f"{prefix}-{fresh_id()}", int(time.time()))


@dataclass
class Config:
    routes: tuple[Route, ...]
    warnings: list[str] = field(default_factory=list)
