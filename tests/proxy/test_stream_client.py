"""The client-side encoder: events in, OpenAI-dialect (or Kong-dialect) SSE bytes out."""

from __future__ import annotations

import json

import pytest

from proxyproof.proxy_impl.model import ReplyStamp
from proxyproof.proxy_impl.streaming.client import KONG_DONE, ClientStream
from proxyproof.proxy_impl.streaming.events import (
    Delta,
    Failure,
    Finish,
    Relay,
    Usage,
    events_from_completion,
)
from proxyproof.proxy_impl.streaming.framing import SseDecoder
from proxyproof.proxy_impl.streaming.outcome import Tally

CHAT, COMPLETIONS = "llm/v1/chat", "llm/v1/completions"


def stream(route_type: str = CHAT, **options) -> ClientStream:
    return ClientStream(
        route_type=route_type, model="llama2", stamp=ReplyStamp("id-1", 7), **options
    )


def payloads(data: bytes) -> list[str]:
    decoder = SseDecoder()
    return [*decoder.feed(data), *decoder.finish()]


def chunks(data: bytes) -> list[dict]:
    return [json.loads(p) for p in payloads(data) if p != "[DONE]"]


def test_chat_stream_role_deltas_finish_done() -> None:
    data = stream().encode([Delta("Hel", (), "m1"), Delta("lo"), Finish("stop", Usage(3, 2), "m1")])
    assert data.endswith(b"\n\ndata: [DONE]\n\n")
    assert payloads(data)[-1] == "[DONE]"
    sent = chunks(data)
    assert [c["choices"][0]["delta"] for c in sent] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in sent] == [None, None, None, "stop"]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in sent} == {
        ("id-1", "chat.completion.chunk", 7, "m1")  # the upstream's model name, when it gives one
    }
    assert all("usage" not in c for c in sent)


def test_completions_stream_has_text_chunks_and_no_role() -> None:
    encoder = stream(COMPLETIONS)
    data = encoder.encode([Delta("a")]) + encoder.encode([Delta("b"), Finish("length")])
    sent = chunks(data)
    assert [(c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in sent] == [
        ("a", None),
        ("b", None),
        ("", "length"),
    ]
    assert {c["object"] for c in sent} == {"text_completion"}
    assert {c["model"] for c in sent} == {"llama2"}  # the resolved name when upstream names none


@pytest.mark.parametrize("route_type", [CHAT, COMPLETIONS])
def test_include_usage_adds_the_usage_chunk(route_type: str) -> None:
    sent = chunks(
        stream(route_type, include_usage=True).encode([Delta("x"), Finish("stop", Usage(4, 1))])
    )
    assert all(c["usage"] is None for c in sent[:-1])
    assert sent[-1]["choices"] == []
    assert sent[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}


def test_tool_call_deltas_reach_the_chat_client() -> None:
    call = {
        "index": 0,
        "id": "call_0",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    sent = chunks(stream().encode([Delta("", (call,)), Finish("stop")]))
    assert sent[1]["choices"][0]["delta"] == {"tool_calls": [call]}


def test_failure_is_an_error_event_then_done() -> None:
    data = stream().encode([Delta("a"), Failure("truncated", "upstream stream ended early")])
    assert payloads(data)[-1] == "[DONE]"
    assert chunks(data)[-1] == {
        "error": {"message": "upstream stream ended early", "type": "upstream_incomplete_stream"}
    }


def test_an_upstream_error_object_is_passed_on() -> None:
    failure = Failure("upstream_error", "boom", {"code": 500, "message": "boom", "type": "x"})
    assert chunks(stream().encode([failure])) == [
        {"error": {"code": 500, "message": "boom", "type": "x"}}
    ]


def test_nothing_after_the_end() -> None:
    encoder = stream()
    encoder.encode([Finish("stop")])
    assert encoder.ended and encoder.encode([Delta("late"), Failure("connection", "x")]) == b""


def test_relayed_payloads_are_written_unchanged() -> None:
    raw = '{"id":"x","object":"chat.completion.chunk","choices":[] ,"weird" : 1}'
    data = stream().encode([Relay(raw, ""), Finish("stop")])
    assert data == f"data: {raw}\n\n".encode() + b"data: [DONE]\n\n"


def test_kong_compat_chunk_shapes_and_framing() -> None:
    chat = stream(kong_compat=True).encode([Delta("a", (), "m"), Delta(""), Finish(None)])
    assert chat == (
        b'data: {"choices":[{"delta":{"content":"a"},"index":0}],"model":"m",'
        b'"object":"chat.completion.chunk"}\n\n'
        b'data: {"choices":[{"delta":{"content":""},"index":0}],'
        b'"object":"chat.completion.chunk"}\n\n' + KONG_DONE
    )
    completions = stream(COMPLETIONS, kong_compat=True).encode(
        [Delta("t", (), "m"), Finish("stop")]
    )
    assert completions == (
        b'data: {"choices":[{"text":"t","index":0}],"model":"m","object":"text_completion"}\n\n'
        b"data: [DONE]"
    )
    assert stream(kong_compat=True).encode([Failure("truncated", "x")]) == b""


@pytest.mark.parametrize("route_type", [CHAT, COMPLETIONS])
def test_a_whole_reply_becomes_one_delta_and_a_finish(route_type: str) -> None:
    if route_type == CHAT:
        body = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
            "object": "chat.completion",
            "usage": {"prompt_tokens": 2, "completion_tokens": 1},
        }
    else:
        body = {
            "choices": [{"index": 0, "text": "Hi", "finish_reason": "length"}],
            "model": "m",
            "object": "text_completion",
        }
    events = events_from_completion(body, route_type)
    assert events[0].text == "Hi"
    assert events[-1] == (
        Finish("stop", Usage(2, 1)) if route_type == CHAT else Finish("length", None, "m")
    )


def test_tally_counts_the_stripped_text_in_constant_memory() -> None:
    tally = Tally()
    tally.observe(
        [Delta("  \n"), Delta(" Hello"), Delta(" wide "), Delta("  "), Relay("x", "world ")]
    )
    tally.observe([Finish("stop", Usage(1, 2), "m")])
    outcome = tally.outcome()
    assert outcome.text_length == len("Hello wide   world")
    assert outcome.estimated_completion_tokens == 5
    assert (outcome.usage, outcome.finish_reason, outcome.model) == (Usage(1, 2), "stop", "m")
    kept = Tally(keep_text=True)
    kept.observe([Delta(" a "), Delta("b "), Failure("truncated", "x")])
    assert kept.outcome().text == "a b" and kept.outcome().finish_reason is None
