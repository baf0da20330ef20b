"""The bodies of the answers the proxy writes itself, with Kong's messages and shapes.

Plugin errors (bad client input, a failed transformation) are ``{"error":{"message":...}}``;
Kong core errors (no route, upstream unreachable, timeout, DNS) are
``{"message":...,"request_id":...}``. Both are ``application/json; charset=utf-8``
(docs/kong-behaviour.md#request-checks, #upstream-failures). A plugin error is written with
Kong's cjson when ``cjson`` is set (``/`` as ``\\/``: docs/kong-behaviour.md#json-encoding).
"""

from __future__ import annotations

from .json_text import compact_json, json_bytes

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

NO_ROUTE = "no Route matched with those values"
UPSTREAM_INVALID = "An invalid response was received from the upstream server"
UPSTREAM_TIMEOUT = "The upstream server is timing out"
NAME_RESOLUTION = "name resolution failed"
UNEXPECTED = "An unexpected error occurred"
# AI Proxy Advanced's balancer (docs/balancer.md).
NO_HEALTHY_TARGET = "no healthy target: the circuit breaker has ejected every target of this route"
EMBEDDINGS_FAILED = "semantic routing could not embed the prompt (the embeddings API failed)"
NO_SEMANTIC_MATCH = (
    "no target matches the prompt: no description is within the semantic threshold and no "
    "target is the CATCHALL"
)

CORE_MESSAGES = {
    500: UNEXPECTED,
    502: UPSTREAM_INVALID,
    503: NAME_RESOLUTION,
    504: UPSTREAM_TIMEOUT,
}


def no_route() -> bytes:
    return compact_json({"message": NO_ROUTE}).encode()


def no_ai_plugin(route: str) -> str:
    return f"route '{route}' has no ai-proxy plugin: proxyproof serves only AI Proxy routes"


def plugin_error(message: str, *, cjson: bool = False) -> bytes:
    return json_bytes({"error": {"message": message}}, cjson=cjson)


def core_error(message: str, request_id: str) -> bytes:
    return compact_json({"message": message, "request_id": request_id}).encode()


def transformation_failed(route_type: str, reason: str) -> str:
    return f"transformation failed from type llama2://{route_type}: {reason}"


def encode_failed(route_type: str, llama2_format: str) -> str:
    return f"error transforming to llama2://{route_type}/{llama2_format}"
