"""Hypothesis strategies derived from ``fixtures/oas.yaml``: client requests and upstream replies.

Public API (documented in ``docs/properties.md``)::

    from proxyproof.harness import strategies as pps
    pps.schema_strategy("OllamaChatResponse")      # any body the schema admits
    pps.chat_requests()                            # client chat requests, narrowed to what the
    pps.completions_requests()                     # oracle can decode (see NARROWINGS)
    pps.upstream_replies("ollama", "llm/v1/chat")  # upstream 200 bodies of one format
    pps.llama_text()                               # Unicode of every kind, control tokens included

Every strategy starts from a schema of the document (``$ref``s inlined here, so
``hypothesis_jsonschema.from_schema`` sees one self-contained schema) and is narrowed only where
the round-trip properties need a request to be meaningful; each narrowing is listed in
``NARROWINGS`` with its reason. Compiled strategies are cached per schema name.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from proxyproof import fixtures

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
_REF_PREFIX = "#/components/schemas/"

# The upstream reply schema of each (llama2_format, hosting mock, route type): what a 200 from
# that upstream may carry. Raw replies differ per server behind the raw format.
UPSTREAM_REPLY_SCHEMAS: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw", CHAT): ("RawKongResponse", "HFInferenceResponse", "TGIGenerateResponse",
                    "RawResponsesField"),
    ("raw", COMPLETIONS): ("RawKongResponse", "HFInferenceResponse", "TGIGenerateResponse",
                           "RawResponsesField"),
    ("ollama", CHAT): ("OllamaChatResponse",),
    ("ollama", COMPLETIONS): ("OllamaGenerateResponse",),
    ("openai", CHAT): ("OpenAIChatResponse",),
    ("openai", COMPLETIONS): ("OpenAICompletionResponse",),
    ("llamacpp", COMPLETIONS): ("LlamaCppCompletionResponse",),
}

NARROWINGS: dict[str, str] = {
    "additionalProperties": "client requests carry only the fields ChatRequest/CompletionsRequest "
    "name: unknown fields are the fuzz command's business, and a property must know what each "
    "field means to say what the upstream must receive. The fields are drawn one by one from "
    "their schemas (roles from ChatMessage's enum, out-of-range options from each option's "
    "schema) and every request is checked against the whole schema",
    "message.content": "a string (llama_text): the Llama 2 template and Ollama's prompt have no "
    "place for content-part arrays or null, so the oracle could not decode them",
    "message fields": "only role and content (and tool_call_id on a tool turn, which OpenAI "
    "requires): tool calls, names and refusals are not carried by the raw or ollama formats and "
    "are out of this property's scope",
    "tools, tool_choice": "dropped, for the same reason",
    "model": "absent, null or the configured name: any other string is the 400 'cannot use own "
    "model', which the catalogue covers",
    "stream": "set by the property (the stream/non-stream axis), not drawn",
    "largest doubles": "an option within 1e295 of the largest double is left out: Kong's %.16g "
    "rounds it to a number past the largest, which every JSON reader takes as infinity",
    "options": "max_tokens, temperature, top_p, top_k keep the schema's types; values are drawn "
    "mostly inside every upstream's accepted range and sometimes anywhere the schema allows "
    "(out of range), where the upstream's error must reach the client",
}

def from_schema(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    # hypothesis is pinned below 6.170.10 (pyproject.toml): later releases dropped what
    # hypothesis-jsonschema 0.23.1 draws objects and arrays with.
    from hypothesis_jsonschema import from_schema as build

    return build(dict(schema))


# ------------------------------------------------------------------ schemas, inlined


def _pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _inline(node: Any, stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    rest = {k: ({name: _inline(sub, stack) for name, sub in v.items()}
                if k in ("properties", "patternProperties") and isinstance(v, dict)
                else _inline(v, stack))
            for k, v in node.items()
            if k not in ("$ref", "description", "examples", "$defs")
            and not k.startswith("x-")}  # annotations only: not keywords that constrain
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in stack:
            raise ValueError(f"recursive schema at {ref}: cannot inline")
        target = _inline(_pointer(fixtures.load_oas(), ref), (*stack, ref))
        return _merged(target, rest)
    return rest


def _merged(base: Any, extra: dict[str, Any]) -> Any:
    """A ``$ref`` with sibling keywords: the siblings refine the target (both apply in 2020-12;
    for the document's uses, refining nested ``properties``/``items`` is the same thing)."""
    if not extra:
        return base
    if not isinstance(base, dict):
        return {"allOf": [base, extra]}
    out = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(out.get(key), dict):
            props = dict(out[key])
            for name, sub in value.items():
                props[name] = _merged(props[name], sub) if name in props else sub
            out[key] = props
        elif key == "items" and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merged(out[key], value)
        elif key == "required":
            out[key] = list(dict.fromkeys([*out.get(key, []), *value]))
        elif key in out and out[key] != value:
            return {"allOf": [base, extra]}  # both apply, as 2020-12 says
        else:
            out[key] = value
    return out


def closed(schema: Any) -> Any:
    """``schema`` with every object that names its properties closed to other ones
    (``additionalProperties: false`` where it says nothing): generated bodies then carry the
    fields the document describes, not megabytes of random keys."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) if k != "properties" else {n: closed(s) for n, s in v.items()}
           for k, v in schema.items()}
    if isinstance(schema.get("properties"), dict) and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


@functools.cache
def _resolved(name: str) -> dict[str, Any]:
    return _inline(fixtures.schema(name), (_REF_PREFIX + name,))


def resolved_schema(name: str) -> dict[str, Any]:
    """``components/schemas/<name>`` with every ``$ref`` inlined (a fresh copy)."""
    return copy.deepcopy(_resolved(name))


@functools.cache
def schema_strategy(name: str, close: bool = True) -> st.SearchStrategy[Any]:
    """JSON values schema ``name`` admits (compiled once per name). ``close`` (the default)
    draws only the properties the schema names (``closed``); ``close=False`` draws anything the
    schema admits, unknown fields included (slow and huge for open response schemas)."""
    return from_schema(closed(_resolved(name)) if close else _resolved(name))


# ------------------------------------------------------------------ text


CONTROL_FRAGMENTS = ("[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "[ inst ]",
                     "< < SYS > >", "[/ INST]", "<<sys>>")
SPICE = ('"', "'", "\\", "\n", "\r\n", "\t", " ", "\u200b", "\u00e9", "\u4e2d\u6587",
         "\U0001f999", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0301", "\ufeff",
         "\u202e", "\x00", "{", "}", "data: ", "[DONE]")


def llama_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Strings of every kind: empty, any Unicode scalar (no lone surrogates, which JSON cannot
    carry as UTF-8), Llama 2's control tokens and their spaced/lower-case variants, quotes,
    newlines, emoji with joiners, combining marks, NUL, SSE-looking text."""
    piece = st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(CONTROL_FRAGMENTS),
        st.sampled_from(SPICE),
    )
    return st.lists(piece, max_size=max(1, max_size // 8)).map("".join).filter(
        lambda text: len(text) <= max_size * 2)


# ------------------------------------------------------------------ client requests


ROLES = ("system", "user", "assistant", "tool", "developer", "function")
OPTION_NAMES = ("max_tokens", "temperature", "top_p", "top_k")


def _survives_cjson(value: Any) -> bool:
    """Not a double so close to the largest that Kong's ``%.16g`` rounds it past it: Kong then
    writes a number no double holds, which no JSON reader gives back (see NARROWINGS)."""
    return not isinstance(value, float) or abs(value) <= 1.7976931348623e308


def _option_values() -> dict[str, st.SearchStrategy[Any]]:
    """Per option: mostly inside every upstream's accepted range (TGI is the strictest: top_p in
    (0, 1), temperature > 0, top_k > 0), sometimes anything the schema's type allows."""
    schema_of = _resolved("ChatRequest")["properties"]

    def mixed(inside: st.SearchStrategy[Any], name: str) -> st.SearchStrategy[Any]:
        anywhere = from_schema(schema_of[name]).filter(_survives_cjson)
        return st.one_of(st.none(), inside, inside, inside, anywhere)

    return {
        "max_tokens": mixed(st.integers(1, 64), "max_tokens"),
        "temperature": mixed(st.floats(0.05, 2.0).map(lambda x: round(x, 3)), "temperature"),
        "top_p": mixed(st.floats(0.05, 0.95).map(lambda x: round(x, 3)), "top_p"),
        "top_k": mixed(st.integers(1, 100), "top_k"),
    }


def _message(contents: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    # ChatMessage's role enum, from the document; content narrowed to a string.
    roles = _resolved("ChatMessage")["properties"]["role"]["enum"]
    message = st.fixed_dictionaries({"role": st.sampled_from(roles), "content": contents})
    # A tool turn carries the tool_call_id that OpenAIChatRequest requires (the openai format
    # passes messages through): ChatMessage allows it, and the other formats ignore it.
    call_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8)
    return st.builds(lambda m, call_id: {**m, "tool_call_id": call_id} if m["role"] == "tool"
                     else m, message, call_ids)


def _with_options(base: st.SearchStrategy[dict[str, Any]], model: str | None
                  ) -> st.SearchStrategy[dict[str, Any]]:
    options = _option_values()

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        request = dict(draw(base))
        for name in OPTION_NAMES:
            request.pop(name, None)
            if draw(st.booleans()):
                request[name] = draw(options[name])
        request.pop("model", None)
        choice = draw(st.sampled_from(("absent", "null", "configured")))
        if choice == "null":
            request["model"] = None
        elif choice == "configured" and model is not None:
            request["model"] = model
        return request

    return build()


@functools.cache
def chat_requests(model: str | None = "llama2", max_turns: int = 6,
                  content: st.SearchStrategy[str] | None = None
                  ) -> st.SearchStrategy[dict[str, Any]]:
    """Client chat requests (ChatRequest): 1 to ``max_turns`` turns in any role order, contents
    from ``llama_text`` (or ``content``), options in and out of range, ``model`` absent, null or
    ``model``. No ``stream``: the caller decides."""
    contents = content if content is not None else llama_text()
    messages = st.lists(_message(contents), min_size=1, max_size=max_turns)
    base = st.builds(lambda turns: {"messages": turns}, messages)
    return _with_options(base, model).filter(_valid("ChatRequest"))


@functools.cache
def completions_requests(model: str | None = "llama2",
                         content: st.SearchStrategy[str] | None = None
                         ) -> st.SearchStrategy[dict[str, Any]]:
    """Client completions requests (CompletionsRequest): a ``llama_text`` prompt (or
    ``content``), options in and out of range, ``model`` absent, null or ``model``."""
    contents = content if content is not None else llama_text()
    base = st.builds(lambda prompt: {"prompt": prompt}, contents)
    return _with_options(base, model).filter(_valid("CompletionsRequest"))


def client_requests(route_type: str, model: str | None = "llama2"
                    ) -> st.SearchStrategy[dict[str, Any]]:
    return chat_requests(model) if route_type == CHAT else completions_requests(model)


def _valid(name: str):  # -> Callable[[Any], bool]
    check = fixtures.validator(name)
    return check.is_valid


# ------------------------------------------------------------------ upstream replies


def upstream_replies(llama2_format: str, route_type: str) -> st.SearchStrategy[Any]:
    """Upstream 200 bodies of one format (``UPSTREAM_REPLY_SCHEMAS``), straight from the
    schemas: every shape a server of that format may answer with."""
    names = UPSTREAM_REPLY_SCHEMAS[(llama2_format, route_type)]
    return st.one_of([schema_strategy(name) for name in names])


def reply_texts() -> st.SearchStrategy[str]:
    """The text a scripted mock answers with: ``llama_text`` that is not blank (a blank reply
    is a separate case: llama.cpp and TGI end such a stream without a text chunk)."""
    return llama_text(60).filter(lambda text: text.strip() != "")


__all__ = [
    "CONTROL_FRAGMENTS", "NARROWINGS", "ROLES", "UPSTREAM_REPLY_SCHEMAS", "chat_requests",
    "client_requests", "completions_requests", "from_schema", "llama_text", "reply_texts",
    "resolved_schema", "schema_strategy", "upstream_replies",
]
