"""Model name, tuning options and the stream decision for one request
(docs/kong-behaviour.md#model-and-tuning, #request-checks).

Pure functions of the client body and the configuration; ``Behaviour`` says which Kong quirks
apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .behaviour import Behaviour
from .model import TUNING_FIELDS


def resolve_model_name(
    configured: str | None, body: Mapping[str, Any], behaviour: Behaviour
) -> str | None:
    """The configured name (templates already rendered) wins; else the client's string model."""
    if configured is not None:
        return configured
    client = body.get("model")
    if isinstance(client, str) and (client or behaviour.blank_client_model_is_a_name):
        return client
    return None


def foreign_model(body: Mapping[str, Any], resolved: str | None) -> bool:
    """The client names a different model than the resolved one (only non-empty strings count)."""
    client = body.get("model")
    return isinstance(client, str) and client != "" and client != resolved


def merge_tuning(body: Mapping[str, Any], configured: Mapping[str, Any]) -> dict[str, Any]:
    """The client body with each configured tuning option overriding the client's value.

    Kong's code and unit tests make the configuration win; its docs say the opposite.
    """
    merged = dict(body)
    for name in TUNING_FIELDS:
        if configured.get(name) is not None:
            merged[name] = configured[name]
    return merged


def stream_requested(body: Mapping[str, Any], behaviour: Behaviour) -> bool:
    """Fixed: only JSON ``true``. Kong: any present value but ``false`` (null, 0, "" stream)."""
    if behaviour.stream_when_truthy:
        return "stream" in body and body["stream"] is not False
    return body.get("stream") is True
