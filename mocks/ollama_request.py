"""How Ollama reads a request: gin's ``ShouldBindJSON`` (Go's ``encoding/json``),
``api.Options.FromMap`` and its model names, with the messages they produce (``server/routes.go``,
``api/types.go``). Shared by the native ``/api/*`` routes and the ``/v1/*`` ones.

``decode`` returns the request object or the 400 reply the real server sends for a body that is
missing, is not JSON, or has a field of the wrong JSON type.
"""

from __future__ import annotations

import math
import re
from typing import Any

from . import strict_json
from .base import NOT_JSON, Call, JsonReply, Reply

GIN_JSON = "application/json; charset=utf-8"  # gin's c.JSON content type
EMBEDDING_SIZE = 4096  # Llama 2 7B's hidden size: the length of its embeddings


def error(status: int, message: str) -> Reply:
    return JsonReply(status, {"error": message}, content_type=GIN_JSON)


_GO_VALUE = {dict: "object", list: "array", str: "string", bool: "bool", int: "number",
             float: "number"}


def go_kind(value: Any) -> str:
    return _GO_VALUE.get(type(value), "null")


# field -> (accepted Python types, Go type name for the error message)
_STRING = ((str,), "string")
_BOOL = ((bool,), "bool")
_OBJECT = ((dict,), "map[string]interface {}")
GENERATE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": _STRING, "prompt": _STRING, "suffix": _STRING, "system": _STRING,
    "template": _STRING, "stream": _BOOL, "raw": _BOOL, "options": _OBJECT,
    "context": ((list,), "[]int"), "images": ((list,), "[]api.ImageData"),
    "top_logprobs": ((int,), "int"), "logprobs": _BOOL,
}
CHAT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": _STRING, "messages": ((list,), "[]api.Message"), "stream": _BOOL,
    "options": _OBJECT, "tools": ((list,), "api.Tools"), "top_logprobs": ((int,), "int"),
    "logprobs": _BOOL,
}
_MESSAGE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "role": _STRING, "content": _STRING, "thinking": _STRING, "tool_name": _STRING,
    "images": ((list,), "[]api.ImageData"), "tool_calls": ((list,), "[]api.ToolCall"),
}
SHOW_FIELDS = {"model": _STRING, "name": _STRING, "system": _STRING, "verbose": _BOOL}
EMBED_FIELDS = {"model": _STRING, "truncate": _BOOL, "dimensions": ((int,), "int"),
                "options": _OBJECT}
EMBEDDINGS_FIELDS = {"model": _STRING, "prompt": _STRING, "options": _OBJECT}


def tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def resolve_model(settings_models: tuple[str, ...], requested: str) -> str | None:
    """The configured model a request names: ``name`` and ``name:latest`` are one model, and
    names are case-insensitive."""
    wanted = tagged(requested).lower()
    for model in settings_models:
        if tagged(model).lower() == wanted:
            return model
    return None


def embedding_size(dimensions: int) -> int:
    """The length of the vectors for a request's ``dimensions``: a shorter length truncates them
    (renormalised), anything else (0 when absent) gives the full ``EMBEDDING_SIZE``."""
    return dimensions if 0 < dimensions < EMBEDDING_SIZE else EMBEDDING_SIZE


def syntax_error(body: bytes) -> str:
    """Go's encoding/json message for a body that is not JSON (``EOF`` when it is empty).

    Go decodes invalid UTF-8 and lone surrogates in strings as U+FFFD, so neither fails here.
    """
    text = body.decode("utf-8", "replace")
    end = len(text.rstrip())
    if not end:
        return "EOF"
    problem = strict_json.problem(body, replace=True)
    if problem is None:
        return "invalid request body"
    if problem.reason == "depth":  # Go's scanner stops at 10,000 levels, the mock earlier
        return "exceeded max depth"
    if problem.reason == "number":  # a float64 (options) or int field cannot hold it
        literal = _LONG_NUMBER.match(problem.doc, problem.pos)
        shown = literal.group() if literal else "number"
        if len(shown) > 64:  # Go quotes it whole; a bounded error body is worth the deviation
            shown = f"{shown[:60]}..."
        return f"json: cannot unmarshal number {shown} into Go value of type float64"
    text, position = problem.doc, problem.pos
    end = len(text.rstrip())
    if position >= end or (text[position] == "-" and position + 1 >= end):
        return "unexpected EOF"
    if text[position] == "-":  # a sign not followed by a digit (-Infinity included)
        return f"invalid character {text[position + 1]!r} in numeric literal"
    return f"invalid character {text[position]!r} looking for beginning of value"


_LONG_NUMBER = re.compile(r"-?\d+")


def _has_type(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a JSON bool is never a Go number or string
        return bool in accepted
    return isinstance(value, accepted)


def _type_errors(
    value: dict, struct: str, fields: dict[str, tuple[tuple[type, ...], str]]
) -> str | None:
    for name, (accepted, go_type) in fields.items():
        field = value.get(name)
        # JSON null leaves a Go field at its zero value
        if field is not None and not _has_type(field, accepted):
            return (
                f"json: cannot unmarshal {go_kind(field)} into Go struct field "
                f"{struct}.{name} of type {go_type}"
            )
    return None


def decode(call: Call, struct: str, fields: dict) -> dict | Reply:
    """The request object, or the 400 that gin's ShouldBindJSON would produce."""
    if not call.body.strip():
        return error(400, "missing request body")
    if call.json is NOT_JSON:
        return error(400, syntax_error(call.body))
    value = call.json
    if value is None:
        return {}
    if not isinstance(value, dict):
        return error(
            400, f"json: cannot unmarshal {go_kind(value)} into Go value of type api.{struct}"
        )
    problem = _type_errors(value, struct, fields)
    return error(400, problem) if problem else value


def message_errors(messages: list) -> str | None:
    for message in messages:
        if not isinstance(message, dict):
            return (
                f"json: cannot unmarshal {go_kind(message)} into Go struct field "
                "ChatRequest.messages of type api.Message"
            )
        problem = _type_errors(message, "ChatRequest.messages", _MESSAGE_FIELDS)
        if problem:
            return problem
    return None


_INT_OPTIONS = {"num_predict", "seed", "top_k", "num_ctx", "num_keep", "repeat_last_n",
                "num_batch", "num_gpu", "main_gpu", "num_thread"}
_FLOAT_OPTIONS = {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty",
                  "presence_penalty", "frequency_penalty"}


def option_error(options: dict) -> str | None:
    """api.Options.FromMap's complaint about a mistyped option (unknown keys are ignored)."""
    for key, value in options.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if key in _INT_OPTIONS and not number:
            return f'option "{key}" must be of type integer'
        if key in _FLOAT_OPTIONS and not number:
            return f'option "{key}" must be of type float32'
        if key == "stop" and not (
            isinstance(value, list) and all(isinstance(s, str) for s in value)
        ):
            return f'option "{key}" must be of type array'
    return None


def int_option(options: dict, key: str) -> int | None:
    """An integer option (Go truncates a JSON float); None when absent or not a finite number."""
    value = options.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return None


def keep_alive_zero(value: Any) -> bool:
    """Whether ``keep_alive`` (seconds as a number, or a Go duration string) is zero."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        stripped = value.strip().rstrip("hms").strip() or "x"
        try:
            return float(stripped) == 0
        except ValueError:
            return False
    return False
