"""What every codec is given and gives back, and the small pieces all three share."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import kong_json
from ..behaviour import Behaviour
from ..json_text import finite_compact_json
from ..model import CHAT, TUNING_FIELDS, ReplyStamp


class EncodeError(ValueError):
    """The request cannot be expressed in the upstream format (a 400 for the client)."""


class TransformError(ValueError):
    """An upstream 200 whose body cannot be translated; ``str(error)`` is Kong's reason."""


@dataclass(slots=True)
class Exchange:
    """What the codecs need to know about one request."""

    route_type: str  # llm/v1/chat | llm/v1/completions
    model: str  # the resolved model name
    stream: bool  # the client gets a stream
    configured_max_tokens: int | None  # config.model.options.max_tokens (Kong's finish rule)
    effective_max_tokens: int | None  # after config/client precedence
    behaviour: Behaviour

    @property
    def chat(self) -> bool:
        return self.route_type == CHAT


@dataclass(frozen=True)
class Codec:
    name: str
    encode: Callable[[Mapping[str, Any], Exchange], dict[str, Any]]
    # The client body for an upstream 200; the stamp is the id and time a reply may need.
    decode: Callable[[bytes, Exchange, ReplyStamp], bytes]


def parse_upstream(upstream_body: bytes, reason: str) -> Any:
    """The upstream's JSON; ``reason`` is Kong's words for a body that is not JSON."""
    try:
        return json.loads(upstream_body)
    except (ValueError, RecursionError):  # deep nesting: Kong's cjson refuses past 1000 levels
        raise TransformError(reason) from None


NOT_FINITE = kong_json.NOT_FINITE


def reply_json(reply: Any, behaviour: Behaviour) -> bytes:
    """The client body the proxy writes (``json_text.compact_json``'s form; Kong's cjson text
    with ``cjson_encoding``, where an empty array copied from the upstream's reply is ``{}``), or
    ``TransformError`` when a field copied from the upstream holds ``NaN``, ``Infinity`` or an
    overflowing number (``1e999``): Python's JSON reader takes them as floats, but they are not
    JSON, and Kong's cjson refuses to encode them with this reason."""
    if behaviour.cjson_encoding:
        try:
            return kong_json.encode(reply, empty_array_as_object=True)
        except kong_json.CannotEncode as error:
            raise TransformError(str(error)) from None
    try:
        return finite_compact_json(reply).encode()
    except ValueError:
        raise TransformError(NOT_FINITE) from None


def tuning_options(body: Mapping[str, Any], *, max_tokens_as: str) -> dict[str, Any]:
    """The tuning options in ``body`` that are set (not null), ``max_tokens`` under the name the
    upstream gives it."""
    renamed = {"max_tokens": max_tokens_as}
    return {
        renamed.get(name, name): body[name] for name in TUNING_FIELDS if body.get(name) is not None
    }
