"""Reading an OpenAI-compatible request: the body's fields, checked as the dialect says.

A request the server refuses raises ``Invalid`` (its words and status come from the dialect's
``Errors``) or ``NotJson``; the handlers turn either into the dialect's reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import generation
from .base import NOT_JSON, Call, Reply
from .openai_compat_dialect import Dialect

MAX_STOP_SEQUENCES = 4


class NotJson(Exception):
    """The body is empty or not JSON: each server has its own words for that."""


class Invalid(Exception):
    """A request the server refuses. ``body`` marks a rejection at deserialisation, which some
    servers word and shape differently (TGI: axum's plain text with the dialect's body_status)."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        code: str | None = None,
        body: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code
        self.body = body

    def reply(self, dialect: Dialect) -> Reply:
        if self.body:
            return dialect.rejected_body(dialect.errors.body_status, self.message)
        return dialect.error(self.status, self.message, param=self.param, code=self.code)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(param: str, expected: str, value: Any) -> Invalid:
    return Invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param,
        code="invalid_type",
    )


def read_object(call: Call) -> dict[str, Any]:
    if call.json is NOT_JSON:
        raise NotJson
    if not isinstance(call.json, dict):
        raise Invalid(
            f"Invalid type for request body: expected an object, but got "
            f"{_json_type(call.json)} instead.",
            body=True,
        )
    return call.json


@dataclass(frozen=True)
class Options:
    model: str  # the model the reply is generated for and reported as
    max_tokens: int | None
    stop: tuple[str, ...]
    seed: int | None
    stream: bool
    include_usage: bool
    n: int = 1  # the number of choices to generate


def _choices(dialect: Dialect, request: Mapping[str, Any]) -> int:
    """``n``: honoured within ``n_max`` (OpenAI's range and words), refused or ignored beyond."""
    n = request.get("n")
    n_max = dialect.requests.n_max
    if n_max is not None:
        if n is None:
            return 1
        if not _is_int(n):
            raise _wrong_type("n", "an integer", n)
        if n < 1:
            raise Invalid(
                f"Invalid 'n': integer below minimum value. Expected a value >= 1, but got {n} "
                "instead.", "n", code="integer_below_min_value",
            )
        if n > n_max:
            raise Invalid(
                f"Invalid 'n': integer above maximum value. Expected a value <= {n_max}, but got "
                f"{n} instead.", "n", code="integer_above_max_value",
            )
        return n
    if n is not None and n != 1 and dialect.requests.rejects_n:
        errors = dialect.errors
        raise Invalid(errors.only_one_choice(n), "n", status=errors.only_one_choice_status,
                      code="invalid_value")
    return 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_model(dialect: Dialect, call: Call, request: Mapping[str, Any], *, check: bool) -> str:
    if dialect.requests.serves_one_model:
        return call.settings.models[0]
    requested = request.get("model")
    if requested is None or requested == "":
        raise Invalid(dialect.errors.missing_model, "model")
    if not isinstance(requested, str):
        raise _wrong_type("model", "a string", requested)
    if check and dialect.requests.model_matcher(call.settings.models, requested) is None:
        message = dialect.errors.model_not_found(requested, call.path)
        raise Invalid(message, status=404, code="model_not_found")
    return requested


def _max_tokens(dialect: Dialect, request: Mapping[str, Any], default: int | None) -> int | None:
    for name in dialect.requests.max_tokens_fields:
        value = request.get(name)
        if value is None:
            continue
        if not _is_int(value):
            raise _wrong_type(name, "an integer", value)
        if dialect.requests.strict and value < 1:
            raise Invalid(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead.",
                name,
                code="integer_below_min_value",
            )
        return value if value > 0 else None  # llama.cpp's -1 and Ollama's 0: no limit
    return default


def _stop(dialect: Dialect, request: Mapping[str, Any]) -> tuple[str, ...]:
    stop = request.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        if dialect.requests.stop_must_be_list:
            raise Invalid(
                "Failed to deserialize the JSON body into the target type: stop: invalid type: "
                f"string {stop!r}, expected a sequence",
                body=True,
            )
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _wrong_type("stop", "a string or an array of strings", stop)
    if dialect.requests.strict and len(stop) > MAX_STOP_SEQUENCES:
        raise Invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length "
            f"{MAX_STOP_SEQUENCES}, but got an array with length {len(stop)} instead.",
            "stop",
            code="array_above_max_length",
        )
    return tuple(stop)


def read_options(
    dialect: Dialect, call: Call, request: Mapping[str, Any], *, default_max: int | None
) -> Options:
    model = read_model(dialect, call, request, check=True)
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    stream_options = request.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise _wrong_type("stream_options", "an object", stream_options)
    if dialect.requests.strict and stream_options is not None and not stream:
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            code="invalid_value",
        )
    include_usage = bool(stream_options and stream_options.get("include_usage"))
    seed = request.get("seed")
    if seed is not None and not _is_int(seed):
        raise _wrong_type("seed", "an integer", seed)
    return Options(
        model=model,
        n=_choices(dialect, request),
        max_tokens=_max_tokens(dialect, request, default_max),
        stop=_stop(dialect, request),
        seed=seed,
        stream=bool(stream),
        include_usage=include_usage,
    )


_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


def read_messages(dialect: Dialect, request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = request.get("messages")
    if messages is None:
        raise Invalid(dialect.errors.missing_messages, "messages", body=True)
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages and not dialect.requests.empty_messages_ok:
        errors = dialect.errors
        raise Invalid(
            errors.empty_messages, "messages", status=errors.body_status, code="empty_array"
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise Invalid(f"Missing required parameter: '{where}.role'.", f"{where}.role",
                           code="missing_required_parameter")
        if not isinstance(role, str):
            raise _wrong_type(f"{where}.role", "a string", role)
        if dialect.requests.strict and role not in _ROLES:
            raise Invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                f"{where}.role",
                code="invalid_value",
            )
    return messages


def read_prompt(dialect: Dialect, request: Mapping[str, Any]) -> tuple[str, int]:
    """The prompt key and prompt token count of a legacy completions request."""
    prompt = request.get("prompt")
    if prompt is None:
        if not dialect.requests.prompt_required:
            return "", 0
        raise Invalid(dialect.errors.missing_prompt, "prompt", body=True)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one is that prompt
    if isinstance(prompt, str):
        return prompt, generation.count_tokens(prompt)
    if dialect.requests.prompt_string_only:
        raise Invalid(
            f"json: cannot unmarshal {'array' if isinstance(prompt, list) else 'value'} into Go "
            "struct field CompletionRequest.prompt of type string"
        )
    if isinstance(prompt, list) and prompt and all(map(_is_int, prompt)):
        return " ".join(map(str, prompt)), len(prompt)  # a token-id prompt
    raise Invalid(
        "This mock completes one prompt per request: send 'prompt' as a string or one array of "
        "token ids.",
        "prompt",
        code="invalid_value",
    )


def read_embedding_inputs(request: Mapping[str, Any]) -> list[str]:
    given = request.get("input")
    if given is None:
        raise Invalid("'input' is a required property", "input")
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given:
        if all(map(_is_int, given)):
            return [" ".join(map(str, given))]  # one input as token ids
        if all(isinstance(item, str) for item in given):
            return list(given)
        if all(isinstance(item, list) and item and all(map(_is_int, item)) for item in given):
            return [" ".join(map(str, item)) for item in given]
    raise _wrong_type("input", "a string, an array of strings or token arrays", given)


def read_embedding_size(dialect: Dialect, request: Mapping[str, Any]) -> int:
    assert dialect.embeddings is not None
    if "dimensions" not in request:
        return dialect.embeddings.dimensions
    requested = request["dimensions"]
    fit = dialect.embeddings.fit
    if fit is not None and (requested is None or _is_int(requested)):
        return fit(requested or 0)  # Go: null is the zero value
    if not _is_int(requested) or requested < 1:
        raise Invalid(
            f"Invalid 'dimensions': expected a positive integer, got {requested!r}.",
            "dimensions",
            code="invalid_value",
        )
    return requested
