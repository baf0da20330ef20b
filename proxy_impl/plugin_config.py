"""One ``ai-proxy`` or ``ai-proxy-advanced`` plugin ``config`` → a typed ``AiPlugin``.

Validates like Kong's schema (its vocabulary is in ``kong_schema``): types, enums, ranges and
Kong's entity checks, with Kong's own messages; for ai-proxy-advanced also its ``balancer``
(docs/balancer.md) and the ``embeddings`` and ``vectordb`` semantic routing reads. Fields Kong
has but this proxy does not act on are warnings when they carry a value; unknown fields,
providers other than llama2 and route types other than chat/completions are errors.
"""

from __future__ import annotations

from dataclasses import replace

from yarl import URL

from . import kong_schema as kong
from .config_fields import Problems, Record, is_unset
from .model import (
    AI_PROXY,
    CHAT,
    COMPLETIONS,
    DEFAULT_TIMEOUT_MS,
    DEFAULT_WEIGHT,
    LLAMA2_FORMATS,
    LOWEST_USAGE,
    PROVIDER,
    SEMANTIC,
    SUPPORTED_ROUTE_TYPES,
    AiPlugin,
    Auth,
    Balancer,
    Embeddings,
    ModelOptions,
    Target,
    VectorDb,
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
    embeddings = vectordb = None
    if kind == AI_PROXY:
        config.only(kong.AI_PROXY_FIELDS)
        target = _read_target(config, problems)
        targets = [target] if target is not None else []
        balancer = Balancer()
    else:
        config.only(kong.AI_PROXY_ADVANCED_FIELDS)
        targets = _read_targets(config, problems)
        target = targets[0] if targets else None
        balancer = _read_balancer(config.record("balancer"))
        embeddings, vectordb = _read_semantic(config, balancer.algorithm, targets)
        _check_targets_fit(config, balancer, targets)
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
        targets=tuple(targets),
        embeddings=embeddings,
        vectordb=vectordb,
    )


def _only_supported(
    config: Record, key: str, known: tuple[str, ...], supported: str, what: str
) -> None:
    value = config.string(key, one_of=known)
    if value is not None and value != supported:
        config.problems.error(
            config.at(key), f"{what} '{value}' is not supported by proxyproof (only '{supported}')"
        )


def _read_targets(config: Record, problems: Problems) -> list[Target]:
    """Every target of ``targets[]`` (each read like ai-proxy's config, plus ``weight`` and
    ``description``); empty when one has errors."""
    if config.raw("targets") is None or config.raw("targets") == []:
        problems.error(config.at("targets"), "required field missing (at least one target)")
        return []
    before = len(problems.errors)
    targets = []
    for record in config.records("targets"):
        record.only(kong.TARGET_FIELDS)
        weight = record.integer("weight", DEFAULT_WEIGHT, between=(1, 65535))
        description = record.string("description")
        target = _read_target(record, problems)
        if target is not None:
            targets.append(replace(target, weight=weight or DEFAULT_WEIGHT,
                                   description=description))
    return targets if len(problems.errors) == before else []


def _check_targets_fit(config: Record, balancer: Balancer, targets: list[Target]) -> None:
    """What one route's targets must share, and what the algorithm needs of them."""
    problems = config.problems
    for index, target in enumerate(targets[1:], start=1):
        if target.route_type != targets[0].route_type:
            problems.error(
                f"{config.at('targets')}[{index}].route_type",
                f"must be the route type of targets[0] ('{targets[0].route_type}'): the client's "
                "request is checked against one route type before a target is chosen",
            )
    if balancer.algorithm != LOWEST_USAGE:
        return
    if balancer.tokens_count_strategy == "llm-accuracy":
        problems.error(
            config.at("balancer.tokens_count_strategy"),
            "'llm-accuracy' is not supported by proxyproof (total-tokens, prompt-tokens, "
            "completion-tokens and cost are)",
        )
    elif balancer.tokens_count_strategy == "cost":
        for index, target in enumerate(targets):
            for name in ("input_cost", "output_cost"):
                if getattr(target.options, name) is None:
                    problems.error(
                        f"{config.at('targets')}[{index}].model.options.{name}",
                        "required by tokens_count_strategy 'cost' (the usage is what the "
                        "tokens cost)",
                    )


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
    defaults = Balancer()
    balancer.only(kong.BALANCER_FIELDS)
    balancer.warn_if_set({"write_timeout": DEFAULT_TIMEOUT_MS}, WRITE_TIMEOUT_NOTE)
    criteria = balancer.strings("failover_criteria", one_of=kong.FAILOVER_CRITERIA)
    return Balancer(
        algorithm=balancer.string("algorithm", one_of=kong.ALGORITHMS) or defaults.algorithm,
        retries=balancer.integer("retries", between=(0, 32767)),
        connect_timeout=balancer.integer("connect_timeout", between=(1, kong.MAX_TIMEOUT)),
        read_timeout=balancer.integer("read_timeout", between=(1, kong.MAX_TIMEOUT)),
        write_timeout=balancer.integer("write_timeout", between=(1, kong.MAX_TIMEOUT)),
        failover_criteria=tuple(dict.fromkeys(criteria)) if criteria is not None else None,
        max_fails=_or(balancer.integer("max_fails", between=(0, 32767)), defaults.max_fails),
        fail_timeout=_or(balancer.integer("fail_timeout", between=(1, kong.MAX_TIMEOUT)),
                         defaults.fail_timeout),
        hash_on_header=balancer.header_name("hash_on_header") or defaults.hash_on_header,
        latency_strategy=balancer.string("latency_strategy", one_of=kong.LATENCY_STRATEGIES)
        or defaults.latency_strategy,
        tokens_count_strategy=balancer.string(
            "tokens_count_strategy", one_of=kong.TOKENS_COUNT_STRATEGIES
        )
        or defaults.tokens_count_strategy,
        slots=_or(balancer.integer("slots", between=(10, 65536)), defaults.slots),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _read_semantic(
    config: Record, algorithm: str, targets: list[Target]
) -> tuple[Embeddings | None, VectorDb | None]:
    """``embeddings`` and ``vectordb``: required by the semantic algorithm, unused otherwise."""
    if algorithm != SEMANTIC:
        config.warn_if_set(
            {"embeddings": None, "vectordb": None}, "only the semantic algorithm uses it"
        )
        return None, None
    embeddings = _read_embeddings(config.record("embeddings", required=True))
    vectordb = _read_vectordb(config.record("vectordb", required=True))
    for index, target in enumerate(targets):
        if not target.description:
            config.problems.warn(
                f"{config.at('targets')}[{index}].description",
                "is not set: semantic routing never chooses this target",
            )
    return embeddings, vectordb


def _read_embeddings(record: Record | None) -> Embeddings | None:
    if record is None:
        return None
    problems = record.problems
    before = len(problems.errors)
    record.only(kong.EMBEDDINGS_FIELDS)
    auth = _read_auth(record.record("auth"))
    model = record.record("model", required=True)
    if model is None:
        return None
    model.only(kong.EMBEDDINGS_MODEL_FIELDS)
    provider = model.string("provider", required=True)
    if provider is not None and provider not in kong.EMBEDDINGS_PROVIDERS:
        problems.error(
            model.at("provider"),
            f"embeddings provider '{provider}' is not supported by proxyproof (only the "
            f"OpenAI-style embeddings API: {', '.join(kong.EMBEDDINGS_PROVIDERS)})",
        )
    name = model.without_controls("name", "it is sent to the embeddings API")
    if name is None and model.raw("name") is None:
        problems.error(model.at("name"), "required field missing")
    url: str | None = kong.OPENAI_EMBEDDINGS_URL
    options = model.record("options")
    if options is not None:
        for key in options.data:
            if key != "upstream_url":
                problems.warn(options.at(str(key)), "is set but proxyproof reads only upstream_url")
        given = options.without_controls("upstream_url", "it becomes the request line")
        if given is not None:
            _check_url(options, given)
            url = given
        elif options.raw("upstream_url") is not None:
            url = None
    if len(problems.errors) > before or auth is None or provider is None or name is None:
        return None
    assert url is not None
    return Embeddings(provider=provider, model_name=name, upstream_url=url, auth=auth)


def _read_vectordb(record: Record | None) -> VectorDb | None:
    if record is None:
        return None
    problems = record.problems
    before = len(problems.errors)
    record.only(kong.VECTORDB_FIELDS)
    record.string("strategy", required=True, one_of=kong.VECTORDB_STRATEGIES)
    dimensions = record.integer("dimensions", between=(1, 65536))
    if record.raw("dimensions") is None:
        problems.error(record.at("dimensions"), "required field missing")
    threshold = record.number("threshold")
    if record.raw("threshold") is None:
        problems.error(record.at("threshold"), "required field missing")
    metric = record.string("distance_metric", required=True, one_of=kong.DISTANCE_METRICS)
    record.warn_if_set(
        {"redis": None, "pgvector": None},
        "proxyproof keeps the description vectors in process (docs/balancer.md#semantic-routing)",
    )
    if len(problems.errors) > before or None in (dimensions, threshold, metric):
        return None
    assert dimensions is not None and threshold is not None and metric is not None
    return VectorDb(dimensions=dimensions, threshold=float(threshold), distance_metric=metric)


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
