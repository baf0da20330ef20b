"""Kong's Lua, where it fails: the runtime errors its transformers raise on replies they do not
expect, worded and located as LuaJIT words them (docs/kong-behaviour.md#json-encoding), and the
Lua rules (types, truthiness, string-to-number coercion) that decide when they happen.
Kong-compatibility mode only.

A Lua error inside a transformer reaches the client in the 500 with its location first, Kong's
install path in front. The lines are Kong's: `llama2.lua` at commit 22246ef28c as running it
reported (issue 11); `shared.lua` and `openai.lua` as in the newest copy of those files we could
read and run (their lines at 22246ef28c may differ); Penlight's `stringx.lua` as in Penlight
1.13.1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

KONG_LUA_PATH = "/usr/local/share/lua/5.1"
LLAMA2_LUA = "kong/llm/drivers/llama2.lua"
SHARED_LUA = "kong/llm/drivers/shared.lua"
OPENAI_LUA = "kong/llm/drivers/openai.lua"
PENLIGHT_STRINGX = "pl/stringx.lua"

# llama2.lua from_raw: `if (not response_table) or (not response_table.data) or (#... > 1)`,
# then `elseif (not response_table.data[1].generated_text)`.
FROM_RAW_CHECK_LINE = 60
FROM_RAW_DATA_LINE = 63
# shared.lua from_ollama: the first index of the decoded reply (`response_table.eval_count`),
# and the sum of the counts (`(eval_count or 0) + (prompt_eval_count or 0)`).
FROM_OLLAMA_INDEX_LINE = 493
FROM_OLLAMA_SUM_LINE = 508
# openai.lua: `if response_object.choices then`, for chat and for completions.
OPENAI_CHOICES_LINE = {"llm/v1/chat": 44, "llm/v1/completions": 57}
# Penlight's stringx.split checks its argument (`assert_arg(n,s,'string')`).
PENLIGHT_ASSERT_LINE = 32

INDEX_NIL = "attempt to index a nil value"


class LuaError(ValueError):
    """A Lua runtime error; ``str(error)`` is the text Kong puts in the 500."""


def lua_error(chunk: str, line: int, message: str) -> str:
    """``message`` raised at ``chunk:line``, as LuaJIT words it (location first)."""
    return f"{KONG_LUA_PATH}/{chunk}:{line}: {message}"


def lua_type(value: Any) -> str:
    """Lua's type name for what cjson decoded ``value`` into (a JSON null is a userdata)."""
    if value is None:
        return "userdata"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "table"


def indexable(value: Any) -> bool:
    """Whether Lua can index ``value`` by name: a table, or a string (whose fields are the
    string library's: any other name is nil)."""
    return isinstance(value, Mapping | list | str)


def field(value: Any, name: str, absent: Any) -> Any:
    """``value.name`` for an indexable value: ``absent`` where Lua finds nil."""
    return value.get(name, absent) if isinstance(value, Mapping) else absent


def truthy(value: Any, absent: Any) -> bool:
    """Lua's truth: only nil and false are false (a JSON null is a truthy userdata)."""
    return value is not absent and value is not False


# What LuaJIT's string-to-number conversion accepts (around Lua whitespace): a decimal number,
# a hexadecimal one (with a binary exponent), inf, infinity or nan, each with a sign.
_LUA_SPACE = " \t\n\v\f\r"
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)
INT64_MAX = 2**63 - 1


def arithmetic_operand(value: Any) -> float | None:
    """``value`` as Lua's `+` sees it: a double (an integer cjson read saturates at the int64
    range first), a string that reads as a number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(min(max(value, -INT64_MAX - 1), INT64_MAX))
    if isinstance(value, float):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip(_LUA_SPACE)
    if _DECIMAL.fullmatch(text) or _SPECIAL.fullmatch(text):
        return float(text)
    if _HEX.fullmatch(text):
        return float.fromhex(text)
    return None


def lua_add(left: Any, right: Any, chunk: str, line: int) -> float:
    """``left + right`` in Lua; LuaJIT names the left operand's type when it is not a number,
    else the right one's."""
    a, b = arithmetic_operand(left), arithmetic_operand(right)
    if a is None or b is None:
        culprit = left if a is None else right
        raise LuaError(lua_error(chunk, line,
                                 f"attempt to perform arithmetic on a {lua_type(culprit)} value"))
    return a + b
