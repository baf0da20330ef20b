"""The codecs are total: whatever a client or an upstream sends, ``encode`` and ``decode`` give a
result or their declared error (``EncodeError``, ``TransformError``) with a message, never any
other exception; and what ``decode`` gives is JSON a client can read (pure, no I/O).

Inputs: client bodies valid against the OAS ``ChatRequest``/``CompletionsRequest`` schemas,
arbitrary JSON bodies run through the proxy's own request checks (``plan_request``: what reaches
``encode`` in the pipeline), arbitrary JSON where the plan allows it (messages of any JSON, any
option value), and for ``decode`` random bytes, random JSON, JSON Python reads but is not JSON
(``NaN``, ``1e999``), deep nesting, and every upstream reply shape of ``fixtures/oas.yaml``.
A decoded reply to a schema-valid upstream reply of the format is a schema-valid
``ChatResponse``/``CompletionsResponse`` (Kong mode: except its documented ISO ``created``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from proxyproof import fixtures
from proxyproof.harness.strategies import schema_strategy
from proxyproof.proxy_impl.behaviour import FIXED, KONG, Behaviour
from proxyproof.proxy_impl.codecs import EncodeError, Exchange, TransformError, codec_for
from proxyproof.proxy_impl.model import CHAT, COMPLETIONS, TUNING_FIELDS, ReplyStamp
from proxyproof.proxy_impl.request import Plan, plan_request

# deadline=None: CI boxes are slow and shared; max_examples comes from the loaded profile.
PROPERTY = settings(deadline=None)

FORMATS = ("raw", "ollama", "openai")
ROUTES = (CHAT, COMPLETIONS)
BEHAVIOURS = {"fixed": FIXED, "kong": KONG}
MODES = [
    pytest.param(llama2_format, route, mode, id=f"{llama2_format}-{route.rsplit('/', 1)[1]}-{mode}")
    for llama2_format in FORMATS
    for route in ROUTES
    for mode in BEHAVIOURS
]
CLIENT_SCHEMA = {CHAT: "ChatRequest", COMPLETIONS: "CompletionsRequest"}
REPLY_SCHEMA = {CHAT: "ChatResponse", COMPLETIONS: "CompletionsResponse"}
# The upstream replies each format reads, per route (fixtures/oas.yaml).
UPSTREAM_SCHEMAS = {
    ("raw", CHAT): (
        "RawKongResponse",
        "RawResponsesField",
        "HFInferenceResponse",
        "TGIGenerateResponse",
    ),
    ("ollama", CHAT): ("OllamaChatResponse",),
    ("ollama", COMPLETIONS): ("OllamaGenerateResponse",),
    # Not TGI's own /v1 schemas: they are TGI's generated document, looser than what TGI sends
    # (any string as a role, say), and the openai format passes a reply on unchanged. What this
    # property found there is fixed in the document (ERRATA T8); the TGI fidelity tests
    # check what the mock sends.
    ("openai", CHAT): ("OpenAIChatResponse",),
    ("openai", COMPLETIONS): ("OpenAICompletionResponse",),
}
UPSTREAM_SCHEMAS["raw", COMPLETIONS] = UPSTREAM_SCHEMAS["raw", CHAT]
ALL_UPSTREAM_SCHEMAS = sorted({name for names in UPSTREAM_SCHEMAS.values() for name in names})
STAMP = ReplyStamp("chatcmpl-property", 1_700_000_000)

# --- JSON and bytes ---------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=5)
# What a lenient JSON reader takes and a client's JSON reader does not (Python's json reads them
# as floats; so does Kong's cjson).
NOT_QUITE_JSON = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def with_token(value: Any, token: str) -> bytes:
    """``value`` as JSON with ``token`` placed where a number would go, at a few depths."""
    text = json.dumps(value, ensure_ascii=False)
    return (
        text.replace('"n": null', f'"n": {token}').replace("null", token, 1).encode()
        if ("null" in text)
        else token.encode()
    )


def with_token_in_a_reply(reply: Any, key: str, token: str) -> bytes:
    """A well-formed upstream reply with ``token`` in a field a codec may copy to the client."""
    if isinstance(reply, list) and reply:
        reply = [{**reply[0], key: {"n": None}}, *reply[1:]]
    elif isinstance(reply, dict):
        reply = {**reply, key: {"n": None}}
    return with_token(reply, token)


# --- OAS schemas as strategies ----------------------------------------------------------------


def from_oas(name: str) -> st.SearchStrategy[Any]:
    """Values valid against ``components/schemas/<name>``."""
    return schema_strategy(name)


# --- the properties ---------------------------------------------------------------------------
# Each property draws its format, route type and behaviour (noted first, so a shrunk failure
# reads as "raw llm/v1/chat kong: body ... reply ..."): one example budget for all twelve.

MODE = st.tuples(
    st.sampled_from(FORMATS), st.sampled_from(ROUTES), st.sampled_from(sorted(BEHAVIOURS))
)


def draw_mode(data: st.DataObject) -> tuple[str, str, Behaviour]:
    llama2_format, route, mode = data.draw(MODE, "format, route type, behaviour")
    return llama2_format, route, BEHAVIOURS[mode]


def draw_exchange(route: str, behaviour: Behaviour, data: st.DataObject) -> Exchange:
    limit = st.none() | st.integers(min_value=0, max_value=8)
    return Exchange(
        route,
        "llama2",
        data.draw(st.booleans(), "stream"),
        data.draw(limit, "configured max_tokens"),
        data.draw(limit, "effective max_tokens"),
        behaviour,
    )


def encode_is_total(llama2_format: str, body: dict[str, Any], exchange: Exchange) -> None:
    note(f"body: {json.dumps(body, ensure_ascii=False)}")
    try:
        request = codec_for(llama2_format).encode(body, exchange)
    except EncodeError as error:
        note(f"EncodeError: {error}")
        assert isinstance(str(error), str) and str(error)
        return
    note(f"upstream request: {json.dumps(request, ensure_ascii=False)}")
    assert isinstance(request, dict)
    json.dumps(request, allow_nan=False)  # the pipeline sends it as compact JSON


def plan_body(route: str) -> st.SearchStrategy[dict[str, Any]]:
    """What ``plan_request`` lets through for ``route``, but any JSON in every other field."""
    prompts = (
        {"messages": st.lists(JSON, min_size=1, max_size=4)} if route == CHAT else {"prompt": TEXT}
    )
    others = ("model", "stream", "stop", "seed", "tools", "tool_choice", "stream_options")
    return st.fixed_dictionaries(
        prompts, optional={name: JSON for name in (*TUNING_FIELDS, *others)}
    )


@PROPERTY
@given(data=st.data())
def test_encode_is_total_on_schema_valid_client_bodies(data):
    llama2_format, route, behaviour = draw_mode(data)
    body = data.draw(from_oas(CLIENT_SCHEMA[route]), "client body")
    encode_is_total(llama2_format, body, draw_exchange(route, behaviour, data))


@PROPERTY
@given(data=st.data())
def test_encode_is_total_on_any_json_in_a_planned_body(data):
    llama2_format, route, behaviour = draw_mode(data)
    body = data.draw(plan_body(route), "planned body")
    encode_is_total(llama2_format, body, draw_exchange(route, behaviour, data))


@PROPERTY
@given(data=st.data())
def test_encode_is_total_after_the_request_checks(data):
    """Any JSON object a client sends, through Kong's checks, then encode: what the pipeline
    does (a rejection is the checks' answer, not the codec's)."""
    llama2_format, route, behaviour = draw_mode(data)
    body = data.draw(OBJECTS | plan_body(CHAT) | plan_body(COMPLETIONS), "client body")
    planned = plan_request(
        body,
        route_type=route,
        configured_model=data.draw(st.sampled_from([None, "llama2"])),
        configured_tuning={},
        llama2_format=llama2_format,
        response_streaming="allow",
        behaviour=behaviour,
    )
    if isinstance(planned, Plan):
        encode_is_total(
            llama2_format,
            planned.body,
            Exchange(route, planned.model, planned.stream, None, None, behaviour),
        )


UPSTREAM_BODIES = st.one_of(
    st.binary(max_size=64),
    JSON.map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
    st.builds(with_token, JSON, NOT_QUITE_JSON),
    st.builds(
        with_token_in_a_reply,
        st.sampled_from(ALL_UPSTREAM_SCHEMAS).flatmap(from_oas),
        st.sampled_from(["usage", "message", "model", "data", "x"]),
        NOT_QUITE_JSON,
    ),
    (st.sampled_from([999, 1001, 5000, 100_000]) | st.integers(0, 3000)).map(nested),
    st.sampled_from(ALL_UPSTREAM_SCHEMAS)
    .flatmap(from_oas)
    .map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
)


def _strict_json(text: bytes, finite: bool = True) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    value = json.loads(text, parse_constant=refuse)
    if finite:  # 1e999 reads as inf; Kong's %.16g may round the largest doubles up to one
        json.dumps(value, allow_nan=False)
    return value


def say(text: str) -> None:
    """``note`` inside a Hypothesis test, ``print`` (shown on failure) outside one."""
    if currently_in_test_context():
        note(text)
    else:
        print(text)


def decoded(llama2_format: str, upstream: bytes, exchange: Exchange) -> Any:
    """The client's reply as JSON, or None for a TransformError (whose message is checked)."""
    say(f"upstream body: {upstream[:300]!r}{'...' if len(upstream) > 300 else ''}")
    try:
        reply = codec_for(llama2_format).decode(upstream, exchange, STAMP)
    except TransformError as error:
        say(f"TransformError: {error}")
        assert isinstance(str(error), str) and str(error)
        return None
    say(f"client reply: {reply[:1000]!r}")
    assert isinstance(reply, bytes)
    if llama2_format == "openai":
        # returned byte for byte (docs/kong-behaviour.md#openai-format): as much JSON as the
        # upstream's own body, read the way the codec reads it
        assert reply == upstream
        return json.loads(reply)
    return _strict_json(reply, finite=not exchange.behaviour.cjson_encoding)


@PROPERTY
@given(upstream=UPSTREAM_BODIES, data=st.data())
def test_decode_is_total_and_gives_json(upstream, data):
    llama2_format, route, behaviour = draw_mode(data)
    reply = decoded(llama2_format, upstream, draw_exchange(route, behaviour, data))
    if reply is not None:
        assert isinstance(reply, dict) and isinstance(reply.get("choices"), list)


@pytest.mark.parametrize("llama2_format", FORMATS)
@pytest.mark.parametrize("mode", sorted(BEHAVIOURS))
@pytest.mark.parametrize(
    "upstream",
    [
        pytest.param(nested(100_000), id="nested-100000"),
        pytest.param(b'{"generated_text":"hi","usage":{"prompt_tokens":NaN}}', id="nan-usage"),
        pytest.param(b'{"data":[{"generated_text":"hi"}],"usage":[1e999]}', id="inf-usage"),
        pytest.param(
            b'{"message":{"role":"assistant","content":"x","n":Infinity},"response":"x"}',
            id="infinity-message",
        ),
    ],
)
def test_decode_of_hostile_json_is_a_transform_error_or_json(llama2_format, mode, upstream):
    """Found by the property above: a deep upstream reply raised RecursionError, and NaN or
    1e999 in a copied field made a reply that is not JSON (``"prompt_tokens":NaN``)."""
    for route in ROUTES:
        reply = decoded(
            llama2_format, upstream, Exchange(route, "m", False, 4, 4, BEHAVIOURS[mode])
        )
        assert reply is None or isinstance(reply, dict)


@PROPERTY
@given(data=st.data())
def test_decode_of_a_schema_valid_upstream_reply_is_a_schema_valid_client_reply(data):
    llama2_format, route, behaviour = draw_mode(data)
    name = data.draw(st.sampled_from(UPSTREAM_SCHEMAS[llama2_format, route]), "upstream schema")
    value = data.draw(from_oas(name), name)
    reply = decoded(
        llama2_format,
        json.dumps(value, ensure_ascii=False).encode(),
        draw_exchange(route, behaviour, data),
    )
    kong_only_reads_data = (
        llama2_format == "raw" and behaviour.raw_reads_only_kong_shape and name != "RawKongResponse"
    )
    if reply is None:
        # the only refusals of a well-formed reply: Kong reading one shape, more than one
        # generation ("cannot parse response"), an empty one ("did not contain a system reply")
        assert llama2_format == "raw", value
        generations = (
            value.get("data", value.get("responses", [value])) if isinstance(value, dict) else value
        )
        assert (
            kong_only_reads_data
            or len(generations) > 1
            or generations[0].get("generated_text") == ""
        ), value
        return
    assert not kong_only_reads_data
    if behaviour.ollama_kong_reply and llama2_format == "ollama":
        # Kong's ISO `created` (docs/kong-behaviour.md#ollama-format)
        assert reply.pop("created", value["created_at"]) == value["created_at"]
    if behaviour.cjson_encoding:
        # Kong's cjson writes an upstream's empty array back as {}
        # (docs/kong-behaviour.md#json-encoding)
        for choice in reply.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and message.get("tool_calls") == {}:
                message["tool_calls"] = []
    fixtures.validate(REPLY_SCHEMA[route], reply)
