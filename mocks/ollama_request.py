"""How Ollama reads a request: gin's ``ShouldBindJSON`` (Go's ``encoding/json``),
``api.Options.FromMap`` and its model names, with the messages they produce (``server/routes.go``,
``api/types.go``). Shared by the native ``/api/*`` routes and the ``/v1/*`` ones.

``decode`` returns the request object or the 400 reply the real server sends for a body that is
missing, is not JSON, or has a field of the wrong JSON type.
"""

from __future__ import annotations

import json
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


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain names a request carries."""
    return json.dumps(text, ensure_ascii=False)


def go_kind(value: Any) -> str:
    return _GO_VALUE.get(type(value), "null")


# field -> (accepted Python types, Go type name for the error message)
_STRING = ((str,), "string")
_BOOL = ((bool,), "bool")
_OBJECT = ((dict,), "map[string]interface {}")
_THINK = ((bool, str), "api.ThinkValue")  # checked by ``think_error``, before the others
# The request structs of api/types.go at v0.11.4 (it has no logprobs, truncate or shift yet).
GENERATE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": _STRING, "prompt": _STRING, "suffix": _STRING, "system": _STRING,
    "template": _STRING, "stream": _BOOL, "raw": _BOOL, "options": _OBJECT,
    "context": ((list,), "[]int"), "images": ((list,), "[]api.ImageData"), "think": _THINK,
}
CHAT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": _STRING, "messages": ((list,), "[]api.Message"), "stream": _BOOL,
    "options": _OBJECT, "tools": ((list,), "api.Tools"), "think": _THINK,
}
_MESSAGE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "role": _STRING, "content": _STRING, "thinking": _STRING, "tool_name": _STRING,
    "images": ((list,), "[]api.ImageData"), "tool_calls": ((list,), "[]api.ToolCall"),
}
SHOW_FIELDS = {"model": _STRING, "name": _STRING, "system": _STRING, "verbose": _BOOL}
EMBED_FIELDS = {"model": _STRING, "truncate": _BOOL, "dimensions": ((int,), "int"),
                "options": _OBJECT}
EMBEDDINGS_FIELDS = {"model": _STRING, "prompt": _STRING, "options": _OBJECT}
PULL_FIELDS = {"model": _STRING, "name": _STRING, "insecure": _BOOL, "username": _STRING,
               "password": _STRING, "stream": _BOOL}
DELETE_FIELDS = {"model": _STRING, "name": _STRING}
COPY_FIELDS = {"source": _STRING, "destination": _STRING}


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
    if not body.strip(b" \t\r\n"):
        return "EOF"
    syntax = go_scan(body)[0]
    if syntax is not None:
        return syntax
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
    return "invalid request body"


# --- Go's encoding/json scanner, for its error messages -------------------------------------

_WHITESPACE = b" \t\r\n"
_GO_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
               0x5C: "\\\\"}


class _GoSyntax(Exception):
    pass


def _quote_char(byte: int) -> str:
    """Go's ``quoteChar``: the offending byte as ``strconv.Quote`` shows one rune."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    if byte in _GO_ESCAPES:
        return f"'{_GO_ESCAPES[byte]}'"
    if byte < 0x20 or byte == 0x7F:
        return f"'\\x{byte:02x}'"
    if byte >= 0x80 and not chr(byte).isprintable():
        return f"'\\u{byte:04x}'"
    return f"'{chr(byte)}'"


class _Scanner:
    """Go's ``json.Decoder`` reading one value: its syntax errors, word for word
    (``encoding/json/scanner.go``); what follows the first value is never read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def fail(self, context: str) -> _GoSyntax:
        if self.pos >= len(self.data):
            return _GoSyntax("unexpected EOF")
        return _GoSyntax(f"invalid character {_quote_char(self.data[self.pos])} {context}")

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def space(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _WHITESPACE:
            self.pos += 1

    def value(self) -> None:
        byte = self.peek()
        if byte == 0x7B:
            self.object()
        elif byte == 0x5B:
            self.array()
        elif byte == 0x22:
            self.string()
        elif byte is not None and (byte == 0x2D or 0x30 <= byte <= 0x39):
            self.number()
        elif byte is not None and chr(byte) in "tfn":
            self.literal({0x74: b"true", 0x66: b"false", 0x6E: b"null"}[byte])
        else:
            raise self.fail("looking for beginning of value")

    def object(self) -> None:
        self.pos += 1
        self.space()
        if self.peek() == 0x7D:
            self.pos += 1
            return
        while True:
            if self.peek() != 0x22:
                raise self.fail("looking for beginning of object key string")
            self.string()
            self.space()
            if self.peek() != 0x3A:
                raise self.fail("after object key")
            self.pos += 1
            self.space()
            self.value()
            self.space()
            byte = self.peek()
            if byte == 0x7D:
                self.pos += 1
                return
            if byte != 0x2C:
                raise self.fail("after object key:value pair")
            self.pos += 1
            self.space()

    def array(self) -> None:
        self.pos += 1
        self.space()
        if self.peek() == 0x5D:
            self.pos += 1
            return
        while True:
            self.value()
            self.space()
            byte = self.peek()
            if byte == 0x5D:
                self.pos += 1
                return
            if byte != 0x2C:
                raise self.fail("after array element")
            self.pos += 1
            self.space()

    def string(self) -> None:
        self.pos += 1
        while True:
            byte = self.peek()
            if byte is None:
                raise self.fail("")
            if byte == 0x22:
                self.pos += 1
                return
            if byte < 0x20:
                raise self.fail("in string literal")
            self.pos += 1
            if byte != 0x5C:
                continue
            byte = self.peek()
            if byte is not None and chr(byte) in '"\\/bfnrt':
                self.pos += 1
            elif byte == 0x75:
                self.pos += 1
                for _ in range(4):
                    hexdigit = self.peek()
                    if hexdigit is None or chr(hexdigit) not in "0123456789abcdefABCDEF":
                        raise self.fail("in \\u hexadecimal character escape")
                    self.pos += 1
            else:
                raise self.fail("in string escape code")

    def digits(self) -> None:
        while (byte := self.peek()) is not None and 0x30 <= byte <= 0x39:
            self.pos += 1

    def number(self) -> None:
        if self.peek() == 0x2D:
            self.pos += 1
            byte = self.peek()
            if byte is None or not 0x30 <= byte <= 0x39:
                raise self.fail("in numeric literal")
        if self.peek() == 0x30:
            self.pos += 1
        else:
            self.digits()
        if self.peek() == 0x2E:
            self.pos += 1
            byte = self.peek()
            if byte is None or not 0x30 <= byte <= 0x39:
                raise self.fail("after decimal point in numeric literal")
            self.digits()
        if self.peek() in (0x65, 0x45):
            self.pos += 1
            if self.peek() in (0x2B, 0x2D):
                self.pos += 1
            byte = self.peek()
            if byte is None or not 0x30 <= byte <= 0x39:
                raise self.fail("in exponent of numeric literal")
            self.digits()

    def literal(self, word: bytes) -> None:
        for expected in word:
            if self.peek() != expected:
                raise self.fail(f"in literal {word.decode()} (expecting {_quote_char(expected)})")
            self.pos += 1


def go_scan(body: bytes) -> tuple[str | None, int]:
    """Go's syntax error for the first JSON value of ``body`` (None when it is well formed) and
    where that value ends: ``json.Decoder.Decode`` (gin's ``ShouldBindJSON``) ignores the rest."""
    scanner = _Scanner(body)
    scanner.space()
    try:
        scanner.value()
    except _GoSyntax as problem:
        return str(problem), scanner.pos
    except RecursionError:  # deeper than Python recurses: strict_json's depth answer decides
        return None, len(body)
    return None, scanner.pos


_LONG_NUMBER = re.compile(r"-?\d+")


def _has_type(value: Any, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # a JSON bool is never a Go number or string
        return bool in accepted
    return isinstance(value, accepted)


def _type_errors(
    value: dict, struct: str, fields: dict[str, tuple[tuple[type, ...], str]]
) -> str | None:
    """Go's first type mismatch, in the body's key order (Go decodes in document order, keeps the
    first mismatch and goes on); ``think`` (a custom unmarshaler) fails at once, so it wins."""
    if "think" in value and "think" in fields:
        problem = think_error(value["think"])
        if problem:
            return problem
    for name, field in value.items():
        expected = fields.get(name)
        # JSON null leaves a Go field at its zero value
        if expected is None or field is None or name == "think":
            continue
        accepted, go_type = expected
        if not _has_type(field, accepted):
            return (
                f"json: cannot unmarshal {go_kind(field)} into Go struct field "
                f"{struct}.{name} of type {go_type}"
            )
    return None


_THINK_LEVELS = ("high", "medium", "low")  # v0.11.4's api.ThinkValue; "max" came later


def think_error(think: Any) -> str | None:
    """``api.ThinkValue.UnmarshalJSON``'s refusal at v0.11.4 (None: accepted or null)."""
    if think is None or isinstance(think, bool):
        return None
    if isinstance(think, str):
        if think in _THINK_LEVELS:
            return None
        quoted = json.dumps(think, ensure_ascii=False)
        return f'invalid think value: {quoted} (must be "high", "medium", "low", true, or false)'
    return 'think must be a boolean or string ("high", "medium", "low", true, or false)'


def decode(call: Call, struct: str, fields: dict) -> dict | Reply:
    """The request object, or the 400 that gin's ShouldBindJSON would produce."""
    if not call.body.strip():
        return error(400, "missing request body")
    value = call.json
    if value is NOT_JSON:
        syntax, end = go_scan(call.body)
        first = NOT_JSON if syntax else strict_json.parse_body(call.body[:end], replace=True)
        if first is NOT_JSON:  # not only trailing bytes after one good value, which Go ignores
            return error(400, syntax_error(call.body))
        value = first
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
        # Go names the innermost struct and the whole field path: Message.messages.role
        problem = _type_errors(message, "Message.messages", _MESSAGE_FIELDS)
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
