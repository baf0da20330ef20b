"""--kong-compat against what Kong's own Lua answered
(docs/kong-behaviour.md#measured-against-kongs-lua).

``kong_fixtures/kong-lua-exchanges.json`` records, for each case, what Kong's llama2 driver
(llama2.lua, shared.lua, openai.lua, run under LuaJIT with Kong's cjson set-up by
``kong_fixtures/kong-lua/driver.lua``) sent upstream and answered the client. Each case is
replayed through the proxy in Kong mode, over HTTP, against an upstream that answers with the
recorded reply; the bodies must be Kong's text apart from key order (Kong's is random per
process) — every string, number and escape as written, whitespace included — or, where the case
names a deviation, the text the deviation gives, for the reason it states.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from proxy_support import FIXTURES, ai_proxy, declarative, running_proxy
from test_kong_json import modulo_key_order

from proxyproof.serving import ThreadedServer

EXCHANGES: list[dict[str, Any]] = json.loads((FIXTURES / "kong-lua-exchanges.json").read_text())
FORMATS = ("raw", "ollama", "openai")
ROUTES = ("llm/v1/chat", "llm/v1/completions")


def same_text(ours: bytes, kongs: str) -> bool:
    """Equal apart from key order: the same tokens, spelled the same, and the same bytes."""
    theirs = kongs.encode()
    return modulo_key_order(ours) == modulo_key_order(theirs) and sorted(ours) == sorted(theirs)


class RecordingUpstream:
    """Answers ``/case/<n>`` with that case's recorded reply and keeps what it was sent."""

    def __init__(self) -> None:
        self.received: dict[int, bytes] = {}

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            index = int(request.match_info["index"])
            self.received[index] = await request.read()
            body = EXCHANGES[index]["upstream_reply"].encode()
            return web.Response(body=body, content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/case/{index}", answer)
        return app


Replayed = dict[int, tuple[bytes | None, int, bytes]]


@pytest.fixture(scope="module")
def replayed() -> Iterator[Replayed]:
    """Every case once through one Kong-mode proxy: (upstream body, status, client body)."""
    recorder = RecordingUpstream()
    with ThreadedServer(recorder.app) as upstream:
        routes = {
            f"/case/{index}": ai_proxy(
                case["route_type"], case["format"], f"{upstream.url}/case/{index}",
                **case["options"],
            )
            for index, case in enumerate(EXCHANGES)
        }  # fmt: skip
        results: Replayed = {}
        with (
            running_proxy(declarative(routes), kong_compat=True) as proxy,
            httpx.Client(timeout=10) as client,
        ):
            for index, case in enumerate(EXCHANGES):
                response = client.post(
                    f"{proxy.url}/case/{index}",
                    content=case["request"].encode(),
                    headers={"Content-Type": "application/json", "Accept-Encoding": "identity"},
                )
                sent = recorder.received.get(index)
                results[index] = (sent, response.status_code, response.content)
        yield results


@pytest.mark.parametrize("index", range(len(EXCHANGES)), ids=[c["case"] for c in EXCHANGES])
def test_kong_mode_answers_as_kongs_lua(replayed, index):
    case = EXCHANGES[index]
    sent, status, reply = replayed[index]
    deviation = case.get("deviation", {})
    upstream = deviation.get("upstream", case["upstream"])
    if upstream is None:
        assert sent is None  # Kong refused before calling the upstream
    else:
        assert sent is not None and same_text(sent, upstream), sent
    assert status == case["status"]
    assert same_text(reply, deviation.get("reply", case["reply"])), reply


def test_the_cases_cover_both_routes_in_every_format():
    covered = {(case["format"], case["route_type"]) for case in EXCHANGES}
    assert covered == {(fmt, route) for fmt in FORMATS for route in ROUTES}
    assert len(EXCHANGES) >= 88


def test_every_deviation_names_its_reason_and_is_one_of_two_kinds():
    """What Kong mode keeps different from the Lua that was run, on purpose: the Lua error
    surfaced in the 500 (an 'unexpected_error' there), and Ollama's tools passed on."""
    deviations = [case for case in EXCHANGES if "deviation" in case]
    for case in deviations:
        deviation = case["deviation"]
        assert deviation["reason"]
        if "reply" in deviation:
            assert "unexpected_error" in case["reply"] and case["lua_error"]
            assert "unexpected_error" not in deviation["reply"]
        else:
            assert case["format"] == "ollama" and "tools" in json.loads(case["request"])
    assert len(deviations) < len(EXCHANGES) // 3
