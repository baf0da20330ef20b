"""The round-trip properties (harness/roundtrip.py) against the bundled proxy and the mocks, in
both modes, and proof that they can fail: gateways that break one thing on purpose are caught and
shrunk to a small example.

Example counts: modest by default (``PROPERTY_EXAMPLES`` per combination); the ``thorough``
hypothesis profile (``HYPOTHESIS_PROFILE=thorough``) runs its own, thousands.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from proxyproof.gateways import bundled_app, bundled_gateway
from proxyproof.harness import strategies as pps
from proxyproof.harness.decoding import RAW_ROLE_LOSS, TOP_K_LOSS
from proxyproof.harness.gateway import InProcessGateway
from proxyproof.harness.roundtrip import (
    COMBINATIONS,
    Combination,
    PropertyRig,
    combinations,
    run_property,
)
from proxyproof.serving import ThreadedServer

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
PROPERTY_EXAMPLES = 6


def _examples(default: int) -> dict[str, Any]:
    """``max_examples`` for a property: the thorough profile's own, else ``default``."""
    return {} if THOROUGH else {"max_examples": default}


PROPERTY_SETTINGS = settings(deadline=None, database=None,
                             suppress_health_check=list(HealthCheck),
                             **_examples(PROPERTY_EXAMPLES))


@pytest.fixture(scope="module")
def rig():
    with PropertyRig(bundled_gateway()) as running:
        yield running


@pytest.fixture(scope="module")
def kong_rig():
    with PropertyRig(bundled_gateway(kong_compat=True), kong_compat=True) as running:
        yield running


@pytest.mark.parametrize("combo", COMBINATIONS, ids=lambda c: c.id)
def test_round_trip(rig: PropertyRig, combo: Combination) -> None:
    @PROPERTY_SETTINGS
    @given(client=pps.client_requests(combo.route_type),
           reply=st.one_of(st.none(), pps.reply_texts()))
    def holds(client: dict[str, Any], reply: str | None) -> None:
        note(f"client: {json.dumps(client, ensure_ascii=False)}; reply: {reply!r}")
        rig.check(combo, client, reply)

    holds()


KONG_COMBOS = [c for c in COMBINATIONS if c.route == "chat"]


@pytest.mark.parametrize("combo", KONG_COMBOS, ids=lambda c: c.id)
def test_round_trip_in_kong_mode(kong_rig: PropertyRig, combo: Combination) -> None:
    """Kong's upstream body and reply flavour hold; its departures are named, not failures."""
    @settings(PROPERTY_SETTINGS, **_examples(3))
    @given(client=pps.chat_requests())
    def holds(client: dict[str, Any]) -> None:
        kong_rig.check(combo, client, None)

    holds()


def test_kong_deviations_are_named(kong_rig: PropertyRig) -> None:
    conversation = {"messages": [{"role": "system", "content": "be brief"},
                                 {"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "hello"},
                                 {"role": "user", "content": "[INST] again"}]}
    raw = kong_rig.check(Combination("llamacpp", "chat", False), conversation, None)
    assert "raw chat prompt built by position (assistant turns dropped)" in raw.deviations
    assert "control tokens in user text pass into the raw prompt" in raw.deviations
    streamed = kong_rig.check(Combination("ollama", "chat", True), conversation, None)
    assert "Ollama streams lack role and finish chunks" in streamed.deviations


def test_losses_are_stated(rig: PropertyRig) -> None:
    conversation = {"messages": [{"role": "tool", "content": "<<SYS>>x", "tool_call_id": "a"}],
                    "top_k": 5}
    raw = rig.check(Combination("huggingface", "chat", False), conversation, None)
    assert RAW_ROLE_LOSS in raw.losses
    openai = rig.check(Combination("gguf", "chat", False), conversation, None)
    assert openai.losses == [TOP_K_LOSS]


def test_combination_selection() -> None:
    assert len(COMBINATIONS) == 16
    assert [c.id for c in combinations("ollama,chat")] == ["ollama.chat.json",
                                                           "ollama.chat.stream"]


# ---------------------------------------------------------------- gateways that are wrong


def _non_ascii_dropped(value: Any) -> Any:
    if isinstance(value, str):
        return "".join(ch for ch in value if ord(ch) < 128)
    if isinstance(value, list):
        return [_non_ascii_dropped(v) for v in value]
    if isinstance(value, dict):
        return {k: _non_ascii_dropped(v) for k, v in value.items()}
    return value


TRUNCATE_AT = 24


def _mutate_request(mode: str, body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages")
    if mode == "swap-turns" and isinstance(messages, list) and len(messages) >= 2:
        body["messages"] = [messages[1], messages[0], *messages[2:]]
    elif mode == "extra-turn" and isinstance(messages, list):
        messages.append({"role": "user", "content": "!"})
    elif mode == "drop-non-ascii":
        body = _non_ascii_dropped(body)
    elif mode == "truncate":
        if isinstance(body.get("prompt"), str):
            body["prompt"] = body["prompt"][:TRUNCATE_AT]
        for message in messages or []:
            if isinstance(message.get("content"), str):
                message["content"] = message["content"][:TRUNCATE_AT]
    return body


def _merge_deltas(payload: bytes) -> bytes:
    """Pairs of content chunks merged into one, their texts joined by a space."""
    events = payload.decode().split("\n\n")
    out, held = [], None
    for event in events:
        data = event.removeprefix("data: ")
        try:
            chunk = json.loads(data)
            delta = chunk["choices"][0]["delta"]
            text = delta["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            if held is not None:
                out.append("data: " + json.dumps(held))
                held = None
            out.append(event)
            continue
        if held is None:
            held = chunk
        else:
            held["choices"][0]["delta"]["content"] += " " + text
            out.append("data: " + json.dumps(held))
            held = None
    if held is not None:
        out.append("data: " + json.dumps(held))
    return "\n\n".join(out).encode()


def _wrong(mode: str) -> InProcessGateway:
    """The reference proxy behind a front that breaks one thing on purpose."""

    def app(config: dict[str, Any]) -> web.Application:
        inner = ThreadedServer(lambda: bundled_app(config)).start()

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                body = json.dumps(_mutate_request(mode, decoded)).encode()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in ("host", "content-length")}
            async with aiohttp.ClientSession() as session, session.request(
                request.method, inner.url + request.path_qs, data=body, headers=headers
            ) as reply:
                payload = await reply.read()
                if mode == "merge-deltas" and reply.content_type == "text/event-stream":
                    payload = _merge_deltas(payload)
                keep = {k: v for k, v in reply.headers.items() if k.lower() not in (
                    "content-length", "transfer-encoding", "content-encoding")}
                return web.Response(status=reply.status, body=payload, headers=keep)

        async def stop(_app: web.Application) -> None:
            await asyncio.get_running_loop().run_in_executor(None, inner.stop)

        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", forward)
        application.on_cleanup.append(stop)
        return application

    return InProcessGateway(app, f"wrong ({mode})")


# Light strategies keep shrinking quick (each step is a few HTTP calls): the same property,
# with no options and short texts of every kind.
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
CHATS = st.builds(lambda turns: {"messages": turns}, st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TEXT}),
    min_size=1, max_size=4))
PROMPTS = st.builds(lambda prompt: {"prompt": prompt}, st.lists(TEXT, max_size=6).map("".join))


def _caught(mode: str, combo: Combination, clients: Any):
    with PropertyRig(_wrong(mode), combos=[combo]) as wrong:
        result = run_property(wrong, combo, max_examples=40, derandomize=True,
                              clients=clients, replies=st.none())
    assert result.outcome == "fail", result
    assert result.failing_request is not None
    return result


def test_a_gateway_that_swaps_two_turns_is_caught() -> None:
    result = _caught("swap-turns", Combination("ollama", "chat", False), CHATS)
    assert "round trip: turns" in result.counterexample
    assert len(result.failing_request["messages"]) == 2  # the smallest conversation it shows in


def test_a_gateway_that_drops_non_ascii_is_caught() -> None:
    result = _caught("drop-non-ascii", Combination("gguf", "completions", False), PROMPTS)
    prompt = result.failing_request["prompt"]
    assert len(prompt) == 1 and ord(prompt) > 127, prompt  # one non-ASCII character


def test_a_gateway_that_truncates_long_content_is_caught() -> None:
    result = _caught("truncate", Combination("huggingface", "completions", False), PROMPTS)
    prompt = result.failing_request["prompt"]
    assert len(prompt) == TRUNCATE_AT + 1, prompt  # one character too long


def test_a_gateway_that_merges_stream_deltas_wrongly_is_caught() -> None:
    result = _caught("merge-deltas", Combination("ollama", "chat", True), CHATS)
    assert "streamed text" in result.counterexample
    assert len(result.failing_request["messages"]) == 1


# ---------------------------------------------------------------- proxyproof check --profile


def _check(capsys, *argv: str) -> tuple[int, dict[str, Any]]:
    from proxyproof.cli import main

    with pytest.raises(SystemExit) as done:
        main(["check", "--profile", "properties", "--json", "-", *argv])
    return done.value.code, json.loads(capsys.readouterr().out)


def test_check_profile_properties_reports_each_combination(capsys) -> None:
    code, report = _check(capsys, "--max-examples", "2", "-k", "ollama")
    assert code == 0
    assert [c["id"] for c in report["cases"]] == [
        "properties.ollama.chat.json", "properties.ollama.chat.stream",
        "properties.ollama.completions.json", "properties.ollama.completions.stream"]
    assert report["summary"]["pass"] == 4
    assert all(c["actual"]["examples"] == 2 for c in report["cases"])


def test_check_profile_properties_names_kong_deviations(capsys) -> None:
    code, report = _check(capsys, "--max-examples", "2", "--kong-compat", "-k",
                          "llamacpp,chat,json")
    assert code == 0
    (case,) = report["cases"]
    assert case["outcome"] == "deviation"
    assert "Kong: raw chat prompt built by position (assistant turns dropped)" in case["details"]


def test_check_profile_properties_exits_1_with_the_counterexample(capsys, monkeypatch) -> None:
    import argparse

    from proxyproof.check import UsageError
    from proxyproof.harness.property_check import run_properties_command

    # The light strategies of the wrong-gateway tests, so that shrinking stays quick.
    monkeypatch.setattr(pps, "client_requests", lambda route_type: CHATS)
    monkeypatch.setattr(pps, "reply_texts", st.none)

    args = argparse.Namespace(max_examples=30, deadline=60, k="ollama,chat,json",
                              json="-", junit=None, markdown=None, gateway="manual",
                              kong_compat=False, mock_bind="127.0.0.1", mock_host=None)
    assert run_properties_command(args, _wrong("extra-turn"), UsageError) == 1
    report = json.loads(capsys.readouterr().out)
    (case,) = report["cases"]
    assert case["outcome"] == "fail"
    assert "shrunk counterexample:" in case["details"]
    assert case["actual"]["failing_request"]["messages"] == [{"role": "user", "content": ""}]


def test_check_profile_properties_alone(capsys) -> None:
    from proxyproof.cli import main

    with pytest.raises(SystemExit) as done:
        main(["check", "--profile", "properties,core"])
    assert done.value.code == 2
