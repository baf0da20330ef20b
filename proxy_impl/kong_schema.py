"""Kong's schema vocabulary, as data: enums, ranges, defaults, field names and entity messages.

Taken from Kong 3.13: ``kong/llm/schemas/init.lua``, ``kong/plugins/ai-proxy/schema.lua``,
ai-proxy-advanced's published schema and ``kong/db/schema/entities/{services,routes,plugins}.lua``.
The readers (``plugin_config``, ``declarative``) hold the logic; this module only says what Kong
accepts, so a config Kong takes is read and one it refuses is refused with Kong's words.
"""

from __future__ import annotations

from .model import AI_PROXY, AI_PROXY_ADVANCED, CHAT, COMPLETIONS

# --- AI plugin enums ----------------------------------------------------------------------------

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
PARAM_LOCATIONS = ("query", "body")
ALGORITHMS = (
    "round-robin", "consistent-hashing", "least-connections", "lowest-latency", "lowest-usage",
    "priority", "semantic",
)  # fmt: skip
LATENCY_STRATEGIES = ("tpot", "e2e")
TOKENS_COUNT_STRATEGIES = (
    "total-tokens", "prompt-tokens", "completion-tokens", "cost", "llm-accuracy",
)  # fmt: skip
DISTANCE_METRICS = ("cosine", "euclidean")
VECTORDB_STRATEGIES = ("redis", "pgvector")
EMBEDDINGS_PROVIDERS = ("openai", "mistral")  # kong/llm/schemas/embeddings.lua
FAILOVER_CRITERIA = (
    "error", "timeout", "invalid_header", "http_403", "http_404", "http_429", "http_500",
    "http_502", "http_503", "http_504", "non_idempotent",
)  # fmt: skip

# --- ranges and defaults ------------------------------------------------------------------------

MAX_TIMEOUT = 2**31 - 2
# max_request_body_size: ai-proxy keeps 8 KiB, ai-proxy-advanced 3.13 has 1 MiB.
DEFAULT_BODY_LIMIT = {AI_PROXY: 8192, AI_PROXY_ADVANCED: 1048576}

# --- AI plugin fields ---------------------------------------------------------------------------

AI_PROXY_FIELDS = {
    "route_type", "auth", "model", "logging", "response_streaming", "model_name_header",
    "max_request_body_size", "llm_format", "genai_category",
}  # fmt: skip
AI_PROXY_ADVANCED_FIELDS = {
    "targets", "balancer", "embeddings", "vectordb", "response_streaming", "model_name_header",
    "max_request_body_size", "llm_format", "genai_category",
}  # fmt: skip
TARGET_FIELDS = {"route_type", "model", "auth", "logging", "weight", "description", "metadata"}
MODEL_FIELDS = {"provider", "name", "options"}
LOGGING_FIELDS = {"log_statistics", "log_payloads"}
BALANCER_FIELDS = {
    "algorithm", "retries", "connect_timeout", "read_timeout", "write_timeout",
    "failover_criteria", "max_fails", "fail_timeout", "hash_on_header", "latency_strategy",
    "tokens_count_strategy", "slots",
}  # fmt: skip
EMBEDDINGS_FIELDS = {"auth", "model"}
EMBEDDINGS_MODEL_FIELDS = {"provider", "name", "options"}
VECTORDB_FIELDS = {"strategy", "dimensions", "threshold", "distance_metric", "redis", "pgvector"}
OPENAI_EMBEDDINGS_URL = "https://api.openai.com/v1/embeddings"  # the driver's default
LLAMA2_OPTIONS = {
    "llama2_format", "upstream_url", "upstream_path", "max_tokens", "temperature", "top_p",
    "top_k", "input_cost", "output_cost",
}  # fmt: skip
AUTH_FIELDS = {
    "header_name", "header_value", "param_name", "param_value", "param_location", "allow_override",
}  # fmt: skip
# Option and auth fields only other providers read, with Kong's defaults.
OTHER_PROVIDER_OPTIONS = {
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
OTHER_PROVIDER_AUTH = {
    "azure_use_managed_identity": False,
    "azure_client_id": None,
    "azure_client_secret": None,
    "azure_tenant_id": None,
    "gcp_use_service_account": False,
    "gcp_service_account_json": None,
    "aws_access_key_id": None,
    "aws_secret_access_key": None,
}

# Fields whose values are credentials: masked wherever a config is echoed or quoted.
SECRET_FIELDS = frozenset({
    "header_value", "param_value", "azure_client_secret", "gcp_service_account_json",
    "aws_secret_access_key",
})  # fmt: skip

# Kong's entity checks for llama2.
MUST_SET_FORMAT = "must set 'model.options.llama2_format' for llama2 provider"
MUST_SET_URL = "must set 'model.options.upstream_url' for self-hosted providers/models"

# --- declarative config entities ----------------------------------------------------------------

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
TOP_LEVEL_READ = {"_format_version", "services", "routes", "plugins"}
TOP_LEVEL_QUIET = {"_transform", "_workspace", "_info", "_comment"}  # say nothing about serving
TOP_LEVEL_ENTITIES = (
    "consumers", "consumer_groups", "upstreams", "targets", "certificates", "ca_certificates",
    "snis", "vaults", "keys", "key_sets", "partials", "filter_chains", "licenses",
    "custom_entities", "workspaces", "rbac_roles", "rbac_users", "developers",
)  # fmt: skip
METADATA = {"id", "name", "tags", "created_at", "updated_at"}
SERVICE_FIELDS = {
    "host", "port", "protocol", "path", "url", "retries", "connect_timeout", "read_timeout",
    "write_timeout", "enabled", "routes", "plugins", "client_certificate", "tls_verify",
    "tls_verify_depth", "ca_certificates", "tls_sans",
}  # fmt: skip
ROUTE_FIELDS = {
    "paths", "methods", "hosts", "protocols", "service", "plugins", "strip_path", "preserve_host",
    "regex_priority", "path_handling", "https_redirect_status_code", "request_buffering",
    "response_buffering", "headers", "snis", "sources", "destinations", "expression", "priority",
}  # fmt: skip
PLUGIN_FIELDS = {
    "config", "enabled", "protocols", "route", "service", "consumer", "consumer_group",
    "instance_name", "ordering",
}  # fmt: skip
