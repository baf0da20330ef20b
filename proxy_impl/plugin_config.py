"""One ``ai-proxy`` or ``ai-proxy-advanced`` plugin ``config`` → a typed ``AiPlugin``.

Validates like Kong's schema (its vocabulary is in ``kong_schema``): types, enums, ranges and
Kong's entity checks, with Kong's own messages. Fields Kong has but this proxy
does not act on are warnings when they carry a value; unknown fields, providers other than
llama2 and route types other than chat/completions are errors.
"""

from __future__ import annotations

from yarl import URL

from . import kong_schema as kong
from .config_fields import Problems, Record, is_unset
from .model import (
    AI_PROXY,
    CHAT,
    COMPLETIONS,
    DEFAULT_TIMEOUT_MS,
    LLAMA2_FORMATS,
    PROVIDER,
    SUPPORTED_ROUTE_TYPES,
    AiPlugin,
    Auth,
    Balancer,
    ModelOptions,
    Target,
)
from .templates import TEMPLATE, template_problems

WRITE_TIMEOUT_NOTE = (
    "is not enforced by proxyproof (only connect and read timeouts are; request bodies are "
    "written at once)"
)
_NOT_FOR_LLAMA2 = "only applies to other providers; the llama2 provider ignores it"


def read_plugin(kind: str, value: object, path: str, problems: Problems) -> AiPlugin | None:
    """The plugin's ``config`` (at ``path``) as an ``AiPlugin``; None when it has errors."""
    before = len(problems.errors)
    config = Record.read(value, path, problems)
    if config is None:
        return None
    if kind == AI_PROXY:
        config.only(kong.AI_PROXY_FIELDS)
        target = _read_target(config, problems)
        balancer = Balancer()
    else:
        config.only(kong.AI_PROXY_ADVANCED_FIELDS)
        target = _read_single_target(config, problems)
        balancer = _read_balancer(config.record("balancer"))
        config.warn_if_set(
            {"embeddings": None, "vectordb": None},
            "semantic routing is not implemented by proxyproof",
        )
    streaming = config.string("response_streaming", one_of=kong.STREAMING) or "allow"
    name_header = config.boolean("model_name_header", True)
    limit = config.integer("max_request_body_size", kong.DEFAULT_BODY_LIMIT[kind], at_least=0)
    _only_supported(config, "llm_format", kong.LLM_FORMATS, "openai", "client-side format")
    _only_supported(config, "genai_category", kong.GENAI_CATEGORIES, "text/generation", "category")
    if target is None or len(problems.errors) > before:
        return None
    return AiPlugin(
        kind=kind,
        target=target,
        response_streaming=streaming,
        model_name_header=name_header,
        max_request_body_size=limit if limit is not None else kong.DEFAULT_BODY_LIMIT[kind],
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
    target.only(kong.TARGET_FIELDS)
    target.integer("weight", 100, between=(1, 65535))
    target.string("description")
    return _read_target(target, problems)


def _read_target(record: Record, problems: Problems) -> Target | None:
    """The target fields shared by ai-proxy's config and each ai-proxy-advanced target."""
    before = len(problems.errors)
    route_type = record.string("route_type", required=True, one_of=kong.ROUTE_TYPES)
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
        logging.only(kong.LOGGING_FIELDS)
        log_statistics = logging.boolean("log_statistics", False)
        log_payloads = logging.boolean("log_payloads", False)
    if model is None:
        return None
    model.only(kong.MODEL_FIELDS)
    provider = model.string("provider", required=True, one_of=kong.PROVIDERS)
    name = model.without_controls("name", "it is sent in the X-Kong-LLM-Model header")
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
        problems.error(format_path, kong.MUST_SET_FORMAT)
        problems.error(url_path, kong.MUST_SET_URL)
        return None
    options.only(kong.LLAMA2_OPTIONS | kong.OTHER_PROVIDER_OPTIONS.keys())
    llama2_format = options.string("llama2_format", one_of=LLAMA2_FORMATS)
    upstream_url = options.without_controls(
        "upstream_url", "it becomes the upstream request line and Host header"
    )
    max_tokens = options.integer("max_tokens")
    temperature = options.number("temperature", between=(0, 5))
    top_p = options.number("top_p", between=(0, 1))
    top_k = options.integer("top_k", between=(0, 500))
    input_cost = options.number("input_cost", greater_than=0)
    output_cost = options.number("output_cost", greater_than=0)
    options.warn_if_set({"upstream_path": None}, "only the 'preserve' route_type uses it")
    options.warn_if_set(kong.OTHER_PROVIDER_OPTIONS, _NOT_FOR_LLAMA2)
    if llama2_format is None and is_unset(options.raw("llama2_format")):
        problems.error(format_path, kong.MUST_SET_FORMAT)
    if upstream_url is None and is_unset(options.raw("upstream_url")):
        problems.error(url_path, kong.MUST_SET_URL)
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
    auth.only(kong.AUTH_FIELDS | kong.OTHER_PROVIDER_AUTH.keys())
    values = {
        "header_name": auth.header_name("header_name"),
        "header_value": auth.without_controls("header_value", "it is sent as an HTTP header"),
        "param_name": auth.string("param_name"),
        "param_value": auth.string("param_value"),
        "param_location": auth.string("param_location", one_of=kong.PARAM_LOCATIONS),
    }
    allow_override = auth.boolean("allow_override", False)
    auth.warn_if_set(kong.OTHER_PROVIDER_AUTH, _NOT_FOR_LLAMA2)
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
    balancer.only(kong.BALANCER_FIELDS)
    balancer.string("algorithm", one_of=kong.ALGORITHMS)
    balancer.header_name("hash_on_header")
    balancer.string("latency_strategy", one_of=kong.LATENCY_STRATEGIES)
    balancer.string("tokens_count_strategy", one_of=kong.TOKENS_COUNT_STRATEGIES)
    balancer.integer("slots", between=(10, 65536))
    balancer.integer("fail_timeout", between=(1, kong.MAX_TIMEOUT))
    if balancer.integer("max_fails", between=(0, 32767)):
        balancer.problems.warn(
            balancer.at("max_fails"),
            "is set but the circuit breaker is not implemented by proxyproof (single target)",
        )
    balancer.warn_if_set({"write_timeout": DEFAULT_TIMEOUT_MS}, WRITE_TIMEOUT_NOTE)
    criteria = balancer.strings("failover_criteria", one_of=kong.FAILOVER_CRITERIA)
    return Balancer(
        retries=balancer.integer("retries", between=(0, 32767)),
        connect_timeout=balancer.integer("connect_timeout", between=(1, kong.MAX_TIMEOUT)),
        read_timeout=balancer.integer("read_timeout", between=(1, kong.MAX_TIMEOUT)),
        write_timeout=balancer.integer("write_timeout", between=(1, kong.MAX_TIMEOUT)),
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
