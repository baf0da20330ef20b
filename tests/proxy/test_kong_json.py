"""Kong-compatibility mode writes JSON as Kong's lua-cjson does, byte for byte apart from key order
(docs/kong-behaviour.md#json-encoding; issue 11 item 1).

``kong_fixtures/cjson-encoding.json`` holds one case per encoder rule (its expected text from
lua-cjson's source and tests, Kong's cjson setup, or what running Kong's Lua gave: each case names
its source); ``kong_fixtures/kong-json-exchanges.json`` holds whole exchanges — client body, the
upstream body Kong sends, the upstream's reply, the status and body the client gets — run through
the proxy in Kong mode against a recording upstream. Both compare text modulo key order only (Kong's
is random per process): every string, number and literal token must match as written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from proxy_support import CHAT, COMPLETIONS, FIXTURES, ai_proxy, declarative, running_proxy

from proxyproof.proxy_impl import errors, kong_json
from proxyproof.proxy_impl.behaviour import FIXED, KONG
from proxyproof.proxy_impl.codecs import Exchange, TransformError, codec_for
from proxyproof.proxy_impl.json_text import json_bytes
from proxyproof.proxy_impl.model import ReplyStamp
from proxyproof.serving import ThreadedServer

ENCODING = json.loads((FIXTURES / "cjson-encoding.json").read_text())
EXCHANGES = json.loads((FIXTURES / "kong-json-exchanges.json").read_text())
LLAMA2_LUA = "/usr/local/share/lua/5.1/kong/llm/drivers/llama2.lua"


# --- comparing JSON text modulo key order --------------------------------------------------------


def modulo_key_order(text: bytes | str) -> Any:
    """``text`` as a tree whose objects are sorted by their keys' raw text and whose scalars are
    their raw tokens: two texts give equal trees iff they differ only in key order."""
    source = text.decode("utf-8") if isinstance(text, bytes) else text
    value, end = _value(source, _space(source, 0))
    assert _space(source, end) == len(source), f"trailing text in {source!r}"
    return value


def _space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _value(text: str, at: int) -> tuple[Any, int]:
    char = text[at]
    if char == "{":
        pairs, at = [], _space(text, at + 1)
        if text[at] == "}":
            return ("{}", ()), at + 1
        while True:
            key, at = _string(text, at)
            at = _space(text, at)
            assert text[at] == ":"
            item, at = _value(text, _space(text, at + 1))
            pairs.append((key, item))
            at = _space(text, at)
            if text[at] == "}":
                return ("{}", tuple(sorted(pairs))), at + 1
            assert text[at] == ","
            at = _space(text, at + 1)
    if char == "[":
        items, at = [], _space(text, at + 1)
        if text[at] == "]":
            return ("[]", ()), at + 1
        while True:
            item, at = _value(text, at)
            items.append(item)
            at = _space(text, at)
            if text[at] == "]":
                return ("[]", tuple(items)), at + 1
            assert text[at] == ","
            at = _space(text, at + 1)
    if char == '"':
        return _string(text, at)
    end = at
    while end < len(text) and text[end] not in ",]} \t\r\n":
        end += 1
    return text[at:end], end


def _string(text: str, at: int) -> tuple[str, int]:
    assert text[at] == '"'
    end = at + 1
    while text[end] != '"':
        end += 2 if text[end] == "\\" else 1
    return text[at : end + 1], end + 1


def test_the_comparison_sees_escapes_and_numbers_but_not_key_order():
    assert modulo_key_order('{"a":1,"b":[2,"x"]}') == modulo_key_order('{"b":[2,"x"],"a":1}')
    assert modulo_key_order('"a\\/b"') != modulo_key_order('"a/b"')
    assert modulo_key_order("1") != modulo_key_order("1.0")
    assert modulo_key_order("[]") != modulo_key_order("{}")


# --- the encoder, rule by rule -------------------------------------------------------------------


@pytest.mark.parametrize("case", ENCODING, ids=[case["case"] for case in ENCODING])
def test_cjson_encoding_rule(case):
    value = json.loads(case["json"])
    as_object = case.get("empty_array_as_object", False)
    encoded = kong_json.encode(value, empty_array_as_object=as_object)
    assert modulo_key_order(encoded) == modulo_key_order(case["cjson"]), case["source"]
    assert json.loads(encoded) == json.loads(case["cjson"])  # Kong's text is still JSON


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_cjson_refuses_what_is_not_a_json_number(number):
    with pytest.raises(kong_json.CannotEncode, match="^Cannot serialise number: must not be NaN"):
        kong_json.encode({"x": [number]})


def test_cjson_refuses_nesting_past_1000():
    deep: Any = "x"
    for _ in range(1001):
        deep = [deep]
    with pytest.raises(kong_json.CannotEncode, match=r"^Cannot serialise, excessive nesting"):
        kong_json.encode(deep)
    for _ in range(1):
        deep = deep[0]
    assert kong_json.encode(deep).startswith(b"[" * 1000)


def test_reference_mode_keeps_clean_json():
    value = {"path": "a/b", "n": 0.30000000000000004, "big": 12345678901234567890, "e": []}
    assert json_bytes(value, cjson=False) == (
        b'{"path":"a/b","n":0.30000000000000004,"big":12345678901234567890,"e":[]}'
    )
    assert json_bytes(value, cjson=True) == (
        b'{"path":"a\\/b","n":0.3,"big":9.223372036854776e+18,"e":[]}'
    )
    assert FIXED.cjson_encoding is False and KONG.cjson_encoding is True


def test_plugin_errors_escape_slashes_only_in_kong_mode():
    message = errors.transformation_failed(CHAT, "x")
    assert errors.plugin_error(message) == (
        b'{"error":{"message":"transformation failed from type llama2://llm/v1/chat: x"}}'
    )
    assert errors.plugin_error(message, cjson=True) == (
        b'{"error":{"message":"transformation failed from type llama2:\\/\\/llm\\/v1\\/chat: x"}}'
    )


# --- the codecs: Lua's nils and errors ----------------------------------------------------------


def _decode(fmt: str, body: bytes, route_type: str, behaviour=KONG) -> bytes:
    exchange = Exchange(route_type, "llama2", False, None, None, behaviour)
    return codec_for(fmt).decode(body, exchange, ReplyStamp("cmpl-1", 1))


def test_ollama_completion_without_response_has_no_text_key():
    body = b'{"model":"m","done":true}'
    choice = json.loads(_decode("ollama", body, COMPLETIONS))["choices"][0]
    assert choice == {"index": 0}
    null = json.loads(_decode("ollama", b'{"model":"m","response":null}', COMPLETIONS))
    assert null["choices"][0] == {"index": 0, "text": None}  # cjson.null is a value, not nil
    fixed = json.loads(_decode("ollama", body, COMPLETIONS, FIXED))["choices"][0]
    assert fixed["text"] is None and fixed["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"data":[]}', f"{LLAMA2_LUA}:63: attempt to index a nil value"),
        (b'{"data":{}}', f"{LLAMA2_LUA}:63: attempt to index a nil value"),
        (b'{"data":"x"}', f"{LLAMA2_LUA}:63: attempt to index a nil value"),
        (b'{"data":[null]}', f"{LLAMA2_LUA}:63: attempt to index a userdata value"),
        (b'{"data":[true]}', f"{LLAMA2_LUA}:63: attempt to index a boolean value"),
        (b'{"data":[1]}', f"{LLAMA2_LUA}:63: attempt to index a number value"),
        (b'{"data":7}', f"{LLAMA2_LUA}:60: attempt to get length of field 'data' (a number value)"),
        (b'{"data":null}',
         f"{LLAMA2_LUA}:60: attempt to get length of field 'data' (a userdata value)"),
        (b"5", f"{LLAMA2_LUA}:60: attempt to index local 'response_table' (a number value)"),
        (b"null",
         f"{LLAMA2_LUA}:60: attempt to index local 'response_table' (a userdata value)"),
        (b"false", "cannot parse response from llama2 endpoint"),
        (b'{"data":"\xc3\xa9"}', "cannot parse response from llama2 endpoint"),  # # is 2 bytes
    ],
)
def test_raw_lua_errors_carry_kongs_location(body, message):
    with pytest.raises(TransformError) as failure:
        _decode("raw", body, CHAT)
    assert str(failure.value) == message


def test_fixed_raw_errors_have_no_lua_location():
    with pytest.raises(TransformError) as failure:
        _decode("raw", b'{"data":[]}', CHAT, FIXED)
    assert str(failure.value) == "response data is empty from llama2 endpoint"


def test_kong_stream_chunks_are_cjson_text():
    from proxyproof.proxy_impl.streaming.client import ClientStream
    from proxyproof.proxy_impl.streaming.events import Delta

    stream = ClientStream(route_type=CHAT, model="m", stamp=ReplyStamp("c", 1), kong_compat=True)
    chunk = stream.encode([Delta(text="a/b", model="m")])
    assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
    assert modulo_key_order(chunk[6:-2]) == modulo_key_order(
        '{"choices":[{"delta":{"content":"a\\/b"},"index":0}],"model":"m",'
        '"object":"chat.completion.chunk"}'
    )


# --- whole exchanges through the proxy -----------------------------------------------------------


class RecordingUpstream:
    """Answers ``/case/<n>`` with that case's reply bytes and keeps the raw bodies it received."""

    def __init__(self) -> None:
        self.received: dict[str, bytes] = {}

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            index = request.match_info["index"]
            self.received[index] = await request.read()
            reply = EXCHANGES[int(index)]["upstream_reply"]
            return web.Response(body=reply.encode(), content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/case/{index}", answer)
        return app


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[RecordingUpstream, str]]:
    recorder = RecordingUpstream()
    with ThreadedServer(recorder.app) as server:
        yield recorder, server.url


def _routes(upstream_url: str) -> dict[str, Any]:
    return declarative({
        f"/case/{index}": ai_proxy(
            case["route_type"], case["format"], f"{upstream_url}/case/{index}", **case["options"]
        )
        for index, case in enumerate(EXCHANGES)
    })  # fmt: skip


Results = dict[int, tuple[bytes | None, httpx.Response]]


def _run_exchanges(upstream: tuple[RecordingUpstream, str], kong_compat: bool) -> Results:
    """Every exchange run once through a proxy in the mode: (upstream bytes, client response)."""
    recorder, url = upstream
    results: Results = {}
    with running_proxy(_routes(url), kong_compat=kong_compat) as proxy:
        for index, case in enumerate(EXCHANGES):
            recorder.received.pop(str(index), None)
            response = httpx.post(
                f"{proxy.url}/case/{index}",
                content=case["request"].encode(),
                headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
                timeout=10,
            )
            results[index] = (recorder.received.get(str(index)), response)
    return results


@pytest.fixture(scope="module")
def kong_results(upstream) -> Results:
    return _run_exchanges(upstream, kong_compat=True)


@pytest.fixture(scope="module")
def fixed_results(upstream) -> Results:
    return _run_exchanges(upstream, kong_compat=False)


def _agrees(case: dict[str, Any], sent: bytes | None, response: httpx.Response) -> bool:
    if (sent is None) != (case["upstream"] is None):
        return False
    if sent is not None and modulo_key_order(sent) != modulo_key_order(case["upstream"]):
        return False
    return response.status_code == case["status"] and modulo_key_order(
        response.content
    ) == modulo_key_order(case["reply"])


@pytest.mark.parametrize("index", range(len(EXCHANGES)), ids=[c["case"] for c in EXCHANGES])
def test_kong_exchange_byte_for_byte(kong_results, index):
    case, (sent, response) = EXCHANGES[index], kong_results[index]
    if case["upstream"] is None:
        assert sent is None
    else:
        assert sent is not None
        assert modulo_key_order(sent) == modulo_key_order(case["upstream"]), sent
    assert response.status_code == case["status"]
    assert modulo_key_order(response.content) == modulo_key_order(case["reply"]), response.content


def test_kong_agreement_counts_every_exchange(kong_results, fixed_results):
    """The measure the issue used: how many exchanges agree with Kong byte for byte (key order
    aside) — every one in Kong mode; the fixed proxy, which writes clean JSON and fixes Kong's
    bugs, agrees only where neither shows."""
    agree = [_agrees(case, *kong_results[i]) for i, case in enumerate(EXCHANGES)]
    assert sum(agree) == len(EXCHANGES)
    fixed = [_agrees(case, *fixed_results[i]) for i, case in enumerate(EXCHANGES)]
    assert sum(fixed) < len(EXCHANGES) // 2


def test_fixed_mode_writes_clean_json(fixed_results):
    for index in range(len(EXCHANGES)):
        sent, response = fixed_results[index]
        for text in (sent or b"", response.content):
            assert b"\\/" not in text
    openai = next(i for i, c in enumerate(EXCHANGES) if c["format"] == "openai")
    sent = fixed_results[openai][0]
    assert sent is not None
    assert b'"temperature":0.30000000000000004' in sent
    assert b'"seed":12345678901234567890' in sent
