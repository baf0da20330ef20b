"""How text-generation-inference reads a generate request: decoding, then validation, and the
error bodies of both (shared by the native routes and the Messages API under ``/v1``).

Two layers, as in TGI's router:

- axum's ``Json`` extractor with serde rejects a malformed body *before* any TGI code runs, with
  a plain-text body: 415 without a JSON content type, 400 for bad JSON syntax, 422 for a body of
  the wrong shape (``missing field `inputs```, ``parameters.stop: invalid type: ...``);
- ``validation.rs`` then checks the parameter values; its errors are JSON
  ``{"error": "Input validation error: ...", "error_type": "validation"}`` (422, or an SSE event on
  a 200 when the client asked to stream).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import generation, strict_json
from .base import NOT_JSON, BytesReply, Call, JsonReply

MAX_STOP_SEQUENCES = 4
MAX_BEST_OF = 2
MAX_INPUT_TOKENS = 4095
MAX_TOTAL_TOKENS = 4096

_PLAIN = "text/plain; charset=utf-8"
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1

# parameter -> serde type; "?" marks an Option (null allowed)
PARAMETER_TYPES: dict[str, str] = {
    "best_of": "usize?", "temperature": "f32?", "repetition_penalty": "f32?",
    "frequency_penalty": "f32?", "top_k": "i32?", "top_p": "f32?", "typical_p": "f32?",
    "do_sample": "bool", "max_new_tokens": "u32?", "return_full_text": "bool?",
    "stop": "strings", "truncate": "usize?", "watermark": "bool", "details": "bool",
    "decoder_input_details": "bool", "seed": "u64?", "top_n_tokens": "u32?",
    "grammar": "grammar?", "adapter_id": "string?",
}

_SERDE_EXPECTED = {
    "usize": "usize", "u32": "u32", "u64": "u64", "i32": "i32", "f32": "f32",
    "bool": "a boolean", "string": "a string", "strings": "a sequence",
    "grammar": "internally tagged enum GrammarType",
}
# GrammarType's tags (TGI 3.3.6 openapi.json; `json_object` is serde's alias of `json`).
GRAMMAR_TYPES = ("json", "json_object", "regex", "json_schema")
_INT_LIMITS = {"usize": (0, _U64_MAX), "u32": (0, _U32_MAX), "u64": (0, _U64_MAX),
               "i32": (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class GenerateRequest:
    inputs: str
    parameters: dict[str, Any] = field(default_factory=dict)
    stream: bool = False

    def param(self, name: str, default: Any = None) -> Any:
        value = self.parameters.get(name)
        return default if value is None else value

    @property
    def stop(self) -> list[str]:
        return list(self.parameters.get("stop") or [])


_ERROR_TYPES = {422: "validation", 424: "generation", 429: "overloaded",
                500: "incomplete_generation", 503: "unhealthy"}


def error(status: int, message: str) -> JsonReply | BytesReply:
    """An error in TGI's flat shape; ``error_type`` follows TGI's status mapping.

    A 405 is axum's own (a route hit with a method it does not serve): an empty body."""
    if status == 405:
        return BytesReply(405, b"", content_type=None)
    fallback = "generation" if status >= 500 else "validation"
    return JsonReply(status, {"error": message, "error_type": _ERROR_TYPES.get(status, fallback)})


def rejection(status: int, text: str) -> BytesReply:
    """axum's plain-text answer to a body it could not deserialise."""
    return BytesReply(status, text.encode(), content_type=_PLAIN)


def not_json(body: bytes) -> BytesReply:
    return rejection(400, f"Failed to parse the request body as JSON: {_syntax_message(body)}")


def _unexpected(value: Any) -> str:
    """serde's description of a JSON value it did not expect."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    return "sequence" if isinstance(value, list) else "map"


def _end_position(body: bytes) -> str:
    """Where serde stands after reading the body's closing brace (it reports a missing field
    there): serde_json counts lines by ``\\n`` and columns in bytes, and stops before any
    trailing whitespace."""
    lines = body.rstrip(b" \t\r\n").split(b"\n")
    return f"at line {len(lines)} column {len(lines[-1])}"


def missing_field(name: str, body: bytes) -> BytesReply:
    """axum's 422 for a body without the required field ``name``."""
    return rejection(422, f"{_DATA_PREFIX}missing field `{name}` {_end_position(body)}")


_DATA_PREFIX = "Failed to deserialize the JSON body into the target type: "


_SYNTAX = {
    "Expecting value": "expected value",
    "Expecting property name enclosed in double quotes": "key must be a string",
    "Extra data": "trailing characters",
    "Expecting ',' delimiter": "expected `,` or `}`",
    "Expecting ':' delimiter": "expected `:`",
}


_SERDE_REASONS = {
    "number": "number out of range",
    "encoding": "invalid unicode code point",
    "surrogate": "lone leading surrogate in hex escape",
    "depth": "recursion limit exceeded",  # serde_json stops at 128 levels, the mock at 512
}


def _syntax_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    if not text.strip():
        return "EOF while parsing a value at line 1 column 0"
    problem = strict_json.problem(body)
    if problem is None:
        return "invalid JSON"
    what = _SERDE_REASONS.get(problem.reason)
    if what is None:
        what = _SYNTAX.get(problem.msg, problem.msg[:1].lower() + problem.msg[1:])
        if problem.pos >= len(problem.doc.rstrip()):
            what = "EOF while parsing a value"
    return f"{what} at line {problem.lineno} column {problem.colno}"


def _type_problem(kind: str, value: Any) -> str | None:
    """serde's complaint about ``value`` for a field of type ``kind`` (None when it fits)."""
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None:
        return None if optional else f"invalid type: null, expected {_SERDE_EXPECTED[kind]}"
    expected = _SERDE_EXPECTED[kind]
    if kind in _INT_LIMITS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"invalid type: {_unexpected(value)}, expected {expected}"
        low, high = _INT_LIMITS[kind]
        if not low <= value <= high:
            return f"invalid value: {_unexpected(value)}, expected {expected}"
        return None
    fits = {
        "f32": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "string": isinstance(value, str),
        "strings": isinstance(value, list),
        "grammar": isinstance(value, dict),
    }[kind]
    return None if fits else f"invalid type: {_unexpected(value)}, expected {expected}"


def _parameter_problem(parameters: Any) -> str | None:
    if not isinstance(parameters, dict):
        unexpected = _unexpected(parameters)
        return f"parameters: invalid type: {unexpected}, expected struct GenerateParameters"
    for name, kind in PARAMETER_TYPES.items():
        if name not in parameters:
            continue
        problem = _type_problem(kind, parameters[name])
        if problem:
            return f"parameters.{name}: {problem}"
    for index, item in enumerate(parameters.get("stop") or []):
        if not isinstance(item, str):
            return f"parameters.stop[{index}]: invalid type: {_unexpected(item)}, expected a string"
    grammar = parameters.get("grammar")
    if isinstance(grammar, dict) and grammar.get("type") not in GRAMMAR_TYPES:
        variant = grammar.get("type")
        if variant is None:
            return "parameters.grammar: missing field `type`"
        return (f"parameters.grammar: unknown variant `{variant}`, expected one of `json`, "
                "`regex`, `json_schema`")
    return None


def _is_json_content_type(call: Call) -> bool:
    essence = call.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return essence == "application/json" or (
        essence.startswith("application/") and essence.endswith("+json")
    )


def decode(
    call: Call, *, compat: bool, require_content_type: bool
) -> GenerateRequest | BytesReply:
    """The request as axum would deserialize it, or axum's plain-text rejection.

    ``compat`` is the ``/`` route's ``CompatGenerateRequest`` (it also reads ``stream``);
    ``require_content_type``: axum's 415 without a JSON content type (HF's Inference API front
    does not insist).
    """
    if require_content_type and not _is_json_content_type(call):
        return rejection(415, "Expected request with `Content-Type: application/json`")
    if call.json is NOT_JSON:
        return not_json(call.body)
    struct = "CompatGenerateRequest" if compat else "GenerateRequest"
    body = call.json
    prefix = "Failed to deserialize the JSON body into the target type: "
    if not isinstance(body, dict):
        unexpected = _unexpected(body)
        return rejection(422, f"{prefix}invalid type: {unexpected}, expected struct {struct}")
    if "inputs" not in body:
        return rejection(422, f"{prefix}missing field `inputs` {_end_position(call.body)}")
    if not isinstance(body["inputs"], str):
        return rejection(422, f"{prefix}inputs: invalid type: {_unexpected(body['inputs'])}, "
                         "expected a string")
    parameters = body.get("parameters", {})
    problem = _parameter_problem(parameters)
    if problem:
        return rejection(422, prefix + problem)
    stream = body.get("stream", False) if compat else False
    if compat and not isinstance(stream, bool):
        return rejection(422, f"{prefix}stream: {_type_problem('bool', stream)}")
    return GenerateRequest(body["inputs"], parameters, stream)


def validation_error(request: GenerateRequest, *, streaming: bool) -> str | None:
    """``validation.rs``'s verdict on the parameter values; the message after the prefix."""
    p = request.param
    best_of = p("best_of", 1)
    sampling = p("do_sample", False) or any(
        request.parameters.get(name) is not None
        for name in ("temperature", "top_k", "top_p", "typical_p")
    )
    if streaming and best_of != 1:
        return "`best_of` != 1 is not supported when streaming tokens"
    if streaming and p("decoder_input_details", False):
        return "`decoder_input_details` == true is not supported when streaming tokens"
    if not 0 < best_of <= MAX_BEST_OF:
        return f"`best_of` must be > 0 and <= {MAX_BEST_OF}. Given: {best_of}"
    if best_of > 1 and not sampling:
        return "you must use sampling when `best_of` is > 1"
    if p("temperature", 1.0) <= 0:
        return "`temperature` must be strictly positive"
    if p("repetition_penalty", 1.0) <= 0:
        return "`repetition_penalty` must be strictly positive"
    if not -2.0 <= p("frequency_penalty", 0.0) <= 2.0:
        return "`frequency_penalty` must be >= -2.0 and <= 2.0"
    top_p = request.parameters.get("top_p")
    if top_p is not None and not 0 < top_p < 1:
        return "`top_p` must be > 0.0 and < 1.0"
    typical_p = request.parameters.get("typical_p")
    if typical_p is not None and not 0 < typical_p < 1:
        return "`typical_p` must be > 0.0 and < 1.0"
    top_k = request.parameters.get("top_k")
    if top_k is not None and top_k <= 0:
        return "`top_k` must be strictly positive"
    if request.parameters.get("max_new_tokens") == 0:
        return "`max_new_tokens` must be strictly positive"
    if len(request.stop) > MAX_STOP_SEQUENCES:
        return (f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. "
                f"Given: {len(request.stop)}")
    if best_of > 1 and request.parameters.get("seed") is not None:
        return "`seed` must not be set when `best_of` > 1"
    if not request.inputs:
        return "`inputs` cannot be empty"
    input_tokens = generation.count_tokens(request.inputs)
    if input_tokens > MAX_INPUT_TOKENS:
        return f"`inputs` must have less than {MAX_INPUT_TOKENS} tokens. Given: {input_tokens}"
    max_new = request.parameters.get("max_new_tokens")
    if max_new is not None and input_tokens + max_new > MAX_TOTAL_TOKENS:
        return (f"`inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}. "
                f"Given: {input_tokens} `inputs` tokens and {max_new} `max_new_tokens`")
    return None


def generated_tokens(gen: generation.Generation) -> int:
    """How many tokens TGI counts (``details.generated_tokens``, ``usage.completion_tokens``):
    the ``</s>`` of a reply that ended before the limit too."""
    return gen.completion_tokens + (gen.finish_reason != "length")
