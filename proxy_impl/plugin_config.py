"""One ``ai-proxy`` or ``ai-proxy-advanced`` plugin ``config`` → a typed ``AiPlugin``.

Validates like Kong's schema (``kong/llm/schemas/init.lua``, the 3.13 plugin schemas): types,
enums, ranges and Kong's entity checks, with Kong's own messages. Fields Kong has but this proxy
does not act on are warnings when they carry a value; unknown fields, providers other than
llama2 and route types other than chat/completions are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from yarl import URL

from .config_fields import Problems, Record, is_unset
from .templates import TEMPLATE, template_problems
from .tuning import TUNING_FIELDS

PROVIDER = "llama2"  # the only provider this proxy serves
AI_PROXY = "ai-proxy"
AI_PROXY_ADVANCED = "ai-proxy-advanced"
CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
SUPPORTED_ROUTE_TYPES = (CHAT, COMPLETIONS)
LLAMA2_FORMATS = ("raw", "openai", "ollama")

PROVIDERS = (
    "anthropic", "azure", "bedrock", "cerebras", "cohere", "dashscope", "gemini", "huggingface",
    "llama2", "mistral", "openai", "xai",
)  # fmt: skip
ROUTE_TYPES = (
    "audio/v1/audio/speech", "audio/v1/audio/transcriptions", "audio/v1/audio/translations",
    "image/v1/images/edits", "image/v1/images/generations", "llm/v1/assistants", "llm/v1/batches",
    CHAT, COMPLETIONS, "llm/v1/embeddings", "llm/v1/files", "llm/v1/responses", "preserve",
    "realtime/v1/realtime", "video/v1/videos/generations",
)  # fmt: skip
LLM_FORMATS = ("anthropic", "bedrock", "cohere", "gemini", "huggingface", "openai")
GENAI_CATEGORIES = (
    "audio/speech", "audio/transcription", "image/generation", "realtime/generation",
    "text/embeddings", "text/generation", "video/generation",
)  # fmt: skip
STREAMING = ("allow", "deny", "always")
ALGORITHMS = (
    "round-robin", "consistent-hashing", "least-connections", "lowest-latency", "lowest-usage",
    "priority", "semantic",
)  # fmt: skip
FAILOVER_CRITERIA = (
    "error", "timeout", "invalid_header", "http_403", "http_404", "http_429", "http_500",
    "http_502", "http_503", "http_504", "non_idempotent",
)  # fmt: skip
DEFAULT_TIMEOUT_MS = 60000  # Kong's connect, read and write timeouts
MAX_TIMEOUT = 2**31 - 2

# Kong's defaults for max_request_body_size: ai-proxy keeps 8 KiB (§10.1), Advanced 1 MiB (§1.1).
DEFAULT_BODY_LIMIT = {AI_PROXY: 8192, AI_PROXY_ADVANCED: 1048576}

WRITE_TIMEOUT_NOTE = (
    "is not enforced by proxyproof (only connect and read timeouts are; request bodies are "
    "written at once)"
)
MUST_SET_FORMAT = "must set 'model.options.llama2_format' for llama2 provider"
MUST_SET_URL = "must set 'model.options.upstream_url' for self-hosted providers/models"

_NOT_FOR_LLAMA2 = "only applies to other providers; the llama2 provider ignores it"
# Known Kong option fields that do nothing for llama2, with Kong's defaults.
_OTHER_PROVIDER_OPTIONS = {
    "anthropic_version": None,
    "azure_instance": None,
    "azure_api_version": "2023-05-15",
    "azure_deployment_id": None,
    "mistral_format": None,
    "embeddings_dimensions": None,
    "bedrock": {"embeddings_normalize": False},
    "gemini": {},
    "huggingface": {},
    "cohere": {"embedding_input_type": "classification"},
    "dashscope": {"international": True},
}
_OTHER_PROVIDER_AUTH = {
    "azure_use_managed_identity": False,
    "azure_client_id": None,
    "azure_client_secret": None,
    "azure_tenant_id": None,
    "gcp_use_service_account": False,
    "gcp_service_account_json": None,
    "aws_access_key_id": None,
    "aws_secret_access_key": None,
}


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
        """The configured sampling options, which override the client's (§2); computed once."""
        values = {name: getattr(self, name) for name in TUNING_FIELDS}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Target:
    route_type: str
    model_name: str | None  # may hold a template; None: the client names the model
    options: ModelOptions
    auth: Auth = Auth()
    log_statistics: bool = False
    log_payloads: bool = False


@dataclass(frozen=True)
class Balancer:
    """AI Proxy Advanced's ``balancer`` fields that matter with a single target."""

    retries: int | None = None
    connect_timeout: int | None = None
    read_timeout: int | None = None
    write_timeout: int | None = None
    failover_criteria: tuple[str, ...] | None = None


@dataclass(frozen=True)
class AiPlugin:
    kind: str  # ai-proxy | ai-proxy-advanced
    path: str  # where it sits in the declarative file, for messages
    target: Target
    response_streaming: str = "allow"
    model_name_header: bool = True
    max_request_body_size: int = 8192  # bytes; 0 = unlimited
    balancer: Balancer = Balancer()


def read_plugin(kind: str, value: object, path: str, problems: Problems) -> AiPlugin | None:
    """The plugin's ``config`` (at ``path``) as an ``AiPlugin``; None when it has errors."""
    before = len(problems.errors)
    config = Record.read(value, path, problems)
    if config is None:
        return None
    if kind == AI_PROXY:
        config.only(
            {"route_type", "auth", "model", "logging", "response_streaming", "model_name_header",
             "max_request_body_size", "llm_format", "genai_category"}
        )  # fmt: skip
        target = _read_target(config, problems)
        balancer = Balancer()
    else:
        config.only(
            {"targets", "balancer", "embeddings", "vectordb", "response_streaming",
             "model_name_header", "max_request_body_size", "llm_format", "genai_category"}
        )  # fmt: skip
        target = _read_single_target(config, problems)
        balancer = _read_balancer(config.record("balancer"))
        config.warn_if_set(
            {"embeddings": None, "vectordb": None},
            "semantic routing is not implemented by proxyproof",
        )
    streaming = config.string("response_streaming", one_of=STREAMING) or "allow"
    name_header = config.boolean("model_name_header", True)
    limit = config.integer("max_request_body_size", DEFAULT_BODY_LIMIT[kind], at_least=0)
    _only_supported(config, "llm_format", LLM_FORMATS, "openai", "client-side format")
    _only_supported(config, "genai_category", GENAI_CATEGORIES, "text/generation", "category")
    if target is None or len(problems.errors) > before:
        return None
    return AiPlugin(
        kind=kind,
        path=path,
        target=target,
        response_streaming=streaming,
        model_name_header=name_header,
        max_request_body_size=limit if limit is not None else DEFAULT_BODY_LIMIT[kind],
        balancer=balancer,
    )


def _only_supported(
    config: Record, key: str, known: tuple[str, ...], supported: str, what: str
) -> None:
    value = config.string(key, one_of=known)
    if value is not None and value != supported:
        config.problems.error(
            config.at(key), f"{what} '{value}' is not supported by proxyproof (only '{supported}')"
        )


def _read_single_target(config: Record, problems: Problems) -> Target | None:
    if config.raw("targets") is None or config.raw("targets") == []:
        problems.error(config.at("targets"), "required field missing (at least one target)")
        return None
    targets = config.records("targets")
    if len(targets) > 1:
        problems.error(
            config.at("targets"),
            f"{len(targets)} targets given: load balancing across several targets is not yet "
            "supported by proxyproof (one target per plugin)",
        )
        return None
    if not targets:
        return None
    target = targets[0]
    target.only({"route_type", "model", "auth", "logging", "weight", "description", "metadata"})
    target.integer("weight", 100, between=(1, 65535))
    target.string("description")
    return _read_target(target, problems)


def _read_target(record: Record, problems: Problems) -> Target | None:
    """The target fields shared by ai-proxy's config and each ai-proxy-advanced target."""
    before = len(problems.errors)
    route_type = record.string("route_type", required=True, one_of=ROUTE_TYPES)
    if route_type is not None and route_type not in SUPPORTED_ROUTE_TYPES:
        problems.error(
            record.at("route_type"),
            f"route_type '{route_type}' is not supported by proxyproof "
            f"(only {CHAT} and {COMPLETIONS})",
        )
    auth = _read_auth(record.record("auth"))
    model = record.record("model", required=True)
    logging = record.record("logging")
    log_statistics = log_payloads = False
    if logging is not None:
        logging.only({"log_statistics", "log_payloads"})
        log_statistics = logging.boolean("log_statistics", False)
        log_payloads = logging.boolean("log_payloads", False)
    if model is None:
        return None
    model.only({"provider", "name", "options"})
    provider = model.string("provider", required=True, one_of=PROVIDERS)
    name = model.string("name")
    if name is not None:
        _check_templates(model, "name", name)
    if provider is None:
        return None
    if provider != PROVIDER:
        problems.error(
            model.at("provider"),
            f"provider '{provider}' is not supported by proxyproof (only '{PROVIDER}')",
        )
        return None
    options = _read_options(model)
    if len(problems.errors) > before or options is None or route_type is None or auth is None:
        return None
    return Target(
        route_type=route_type,
        model_name=name,
        options=options,
        auth=auth,
        log_statistics=log_statistics,
        log_payloads=log_payloads,
    )


def _read_options(model: Record) -> ModelOptions | None:
    problems = model.problems
    options = model.record("options")
    # Kong's entity checks name the field they miss; so do we.
    format_path = f"{model.at('options')}.llama2_format"
    url_path = f"{model.at('options')}.upstream_url"
    if options is None:
        problems.error(format_path, MUST_SET_FORMAT)
        problems.error(url_path, MUST_SET_URL)
        return None
    options.only(
        {"llama2_format", "upstream_url", "upstream_path", "max_tokens", "temperature", "top_p",
         "top_k", "input_cost", "output_cost", *_OTHER_PROVIDER_OPTIONS}
    )  # fmt: skip
    llama2_format = options.string("llama2_format", one_of=LLAMA2_FORMATS)
    upstream_url = options.string("upstream_url")
    max_tokens = options.integer("max_tokens")
    temperature = options.number("temperature", between=(0, 5))
    top_p = options.number("top_p", between=(0, 1))
    top_k = options.integer("top_k", between=(0, 500))
    input_cost = options.number("input_cost", greater_than=0)
    output_cost = options.number("output_cost", greater_than=0)
    options.warn_if_set({"upstream_path": None}, "only the 'preserve' route_type uses it")
    options.warn_if_set(_OTHER_PROVIDER_OPTIONS, _NOT_FOR_LLAMA2)
    if llama2_format is None and is_unset(options.raw("llama2_format")):
        problems.error(format_path, MUST_SET_FORMAT)
    if upstream_url is None and is_unset(options.raw("upstream_url")):
        problems.error(url_path, MUST_SET_URL)
    elif upstream_url is not None:
        _check_url(options, upstream_url)
    if llama2_format is None or upstream_url is None:
        return None
    return ModelOptions(
        llama2_format=llama2_format,
        upstream_url=upstream_url,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        input_cost=input_cost,
        output_cost=output_cost,
    )


def _read_auth(auth: Record | None) -> Auth | None:
    if auth is None:
        return Auth()
    problems = auth.problems
    before = len(problems.errors)
    auth.only(
        {"header_name", "header_value", "param_name", "param_value", "param_location",
         "allow_override", *_OTHER_PROVIDER_AUTH}
    )  # fmt: skip
    values = {
        "header_name": auth.string("header_name"),
        "header_value": auth.string("header_value"),
        "param_name": auth.string("param_name"),
        "param_value": auth.string("param_value"),
        "param_location": auth.string("param_location", one_of=("query", "body")),
    }
    allow_override = auth.boolean("allow_override", False)
    auth.warn_if_set(_OTHER_PROVIDER_AUTH, _NOT_FOR_LLAMA2)
    for group in (("header_name", "header_value"), ("param_name", "param_value", "param_location")):
        given = [name for name in group if not is_unset(auth.raw(name))]
        if given and len(given) != len(group):
            listed = ", ".join(f"'auth.{name}'" for name in group)
            problems.error(auth.path, f"all or none of these fields must be set: {listed}")
    if len(problems.errors) > before:
        return None
    return Auth(allow_override=allow_override, **values)


def _read_balancer(balancer: Record | None) -> Balancer:
    if balancer is None:
        return Balancer()
    balancer.only(
        {"algorithm", "retries", "connect_timeout", "read_timeout", "write_timeout",
         "failover_criteria", "max_fails", "fail_timeout", "hash_on_header", "latency_strategy",
         "tokens_count_strategy", "slots"}
    )  # fmt: skip
    balancer.string("algorithm", one_of=ALGORITHMS)
    balancer.string("hash_on_header")
    balancer.string("latency_strategy", one_of=("tpot", "e2e"))
    balancer.string(
        "tokens_count_strategy",
        one_of=("total-tokens", "prompt-tokens", "completion-tokens", "cost", "llm-accuracy"),
    )
    balancer.integer("slots", between=(10, 65536))
    balancer.integer("fail_timeout", between=(1, MAX_TIMEOUT))
    if balancer.integer("max_fails", between=(0, 32767)):
        balancer.problems.warn(
            balancer.at("max_fails"),
            "is set but the circuit breaker is not implemented by proxyproof (single target)",
        )
    balancer.warn_if_set({"write_timeout": DEFAULT_TIMEOUT_MS}, WRITE_TIMEOUT_NOTE)
    criteria = balancer.strings("failover_criteria", one_of=FAILOVER_CRITERIA)
    return Balancer(
        retries=balancer.integer("retries", between=(0, 32767)),
        connect_timeout=balancer.integer("connect_timeout", between=(1, MAX_TIMEOUT)),
        read_timeout=balancer.integer("read_timeout", between=(1, MAX_TIMEOUT)),
        write_timeout=balancer.integer("write_timeout", between=(1, MAX_TIMEOUT)),
        failover_criteria=tuple(criteria) if criteria is not None else None,
    )


def _check_templates(record: Record, key: str, value: str) -> None:
    """Templates are resolved per request; only their shape can be checked now."""
    for problem in template_problems(value):
        record.problems.error(record.at(key), problem)


def _check_url(options: Record, url: str) -> None:
    _check_templates(options, "upstream_url", url)
    concrete = TEMPLATE.sub("template", url)  # a template stands for some text
    try:
        parsed = URL(concrete)
    except ValueError as error:
        options.problems.error(options.at("upstream_url"), f"invalid url: {error}")
        return
    if parsed.scheme not in ("http", "https"):
        options.problems.error(
            options.at("upstream_url"),
            f"unsupported scheme '{parsed.scheme}' in url (expected http or https)"
            if parsed.scheme
            else "missing scheme in url",
        )
    elif not parsed.host:
        options.problems.error(options.at("upstream_url"), "missing host in url")
