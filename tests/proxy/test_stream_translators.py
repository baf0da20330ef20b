"""The stream translators are pure state machines: whatever way the upstream's bytes are cut
into reads, and whatever line ends or keep-alives it uses, they emit the same events."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxyproof.proxy_impl.codecs.raw import LUA_SPACE
from proxyproof.proxy_impl.model import ReplyStamp
from proxyproof.proxy_impl.streaming.client import ClientStream
from proxyproof.proxy_impl.streaming.events import Delta, Event, Failure, Finish, Relay, Usage
from proxyproof.proxy_impl.streaming.framing import (
    MAX_LINE_BYTES,
    FramingError,
    LineSplitter,
    NdjsonDecoder,
    SseDecoder,
)
from proxyproof.proxy_impl.streaming.ollama import OllamaTranslator
from proxyproof.proxy_impl.streaming.openai import OpenAITranslator
from proxyproof.proxy_impl.streaming.outcome import Tally
from proxyproof.proxy_impl.streaming.raw import RawTranslator, TrimmedText
from proxyproof.proxy_impl.streaming.translator import Translator

# --- upstream streams, built the way each server writes them --------------------------------------

TOKEN = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x1F600), max_size=6
)
TOKENS = st.lists(TOKEN, min_size=0, max_size=8)


def line(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def event(value: object) -> bytes:
    payload = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


def ollama_chat(tokens: list[str], reason: str = "stop") -> bytes:
    chunks = [
        line(
            {
                "model": "llama2",
                "created_at": "2024-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": t},
                "done": False,
            }
        )
        for t in tokens
    ]
    final = {
        "model": "llama2",
        "created_at": "2024-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
        "prompt_eval_count": 7,
        "eval_count": len(tokens),
    }
    return b"".join(chunks) + line(final)


def ollama_generate(tokens: list[str]) -> bytes:
    chunks = [line({"model": "llama2", "response": t, "done": False}) for t in tokens]
    final = {
        "model": "llama2",
        "response": "",
        "done": True,
        "prompt_eval_count": 3,
        "eval_count": len(tokens),
    }
    return b"".join(chunks) + line(final)


def tgi(tokens: list[str], details: bool = True) -> bytes:
    frames = [
        event(
            {
                "index": i + 1,
                "token": {"id": i, "text": t, "logprob": -0.5, "special": False},
                "generated_text": None,
                "details": None,
            }
        )
        for i, t in enumerate(tokens)
    ]
    last = {
        "index": len(tokens) + 1,
        "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": True},
        "generated_text": "".join(tokens),
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": len(tokens) + 1,
            "seed": None,
            "input_length": 5,
        }
        if details
        else None,
    }
    return b"".join(frames) + event(last)


def llamacpp(tokens: list[str], stop_type: str = "eos") -> bytes:
    frames = [event({"index": 0, "content": t, "tokens": [1], "stop": False}) for t in tokens]
    final = {
        "index": 0,
        "content": "",
        "tokens": [],
        "stop": True,
        "stop_type": stop_type,
        "tokens_predicted": len(tokens),
        "tokens_evaluated": 9,
        "model": "m",
    }
    return b"".join(frames) + event(final)


def openai_chat(tokens: list[str]) -> bytes:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    frames = [
        event(
            {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
            }
        )
    ]
    frames += [
        event({**base, "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]})
        for t in tokens
    ]
    frames.append(event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    frames.append(
        event(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 4,
                    "completion_tokens": len(tokens),
                    "total_tokens": 4 + len(tokens),
                },
            }
        )
    )
    return b"".join(frames) + event("[DONE]")


# --- helpers --------------------------------------------------------------------------------------


def run(make: Callable[[], Translator], reads: list[bytes]) -> list[Event]:
    translator = make()
    events: list[Event] = []
    for data in reads:
        events += translator.feed(data)
    return events + translator.finish()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p % (len(data) + 1) for p in points}), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta | Relay))


TRANSLATORS: dict[str, tuple[Callable[[], Translator], Callable[[list[str]], bytes]]] = {
    "ollama-chat": (OllamaTranslator, ollama_chat),
    "ollama-generate": (OllamaTranslator, ollama_generate),
    "tgi": (RawTranslator, tgi),
    "llamacpp": (RawTranslator, llamacpp),
    "openai": (OpenAITranslator, openai_chat),
}

SPLITS = st.lists(st.integers(min_value=0, max_value=10_000), max_size=25)


# --- the split property ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRANSLATORS)
@settings(max_examples=60, deadline=None)
@given(tokens=TOKENS, points=SPLITS)
def test_any_split_gives_the_same_events(name: str, tokens: list[str], points: list[int]) -> None:
    make, build = TRANSLATORS[name]
    data = build(tokens)
    whole = run(make, [data])
    assert run(make, cut(data, points)) == whole
    assert isinstance(whole[-1], Finish)


def led(make: Callable[[], Translator], reads: list[bytes]) -> list[list[Event]]:
    """What the relay sends, one list per send: each read through ``lead``, then what it held."""
    translator = make()
    sends: list[list[Event]] = []
    for data in reads:
        sends.append(translator.lead(data))
        if translator.holding:
            sends.append(translator.feed(b""))
    return [*sends, translator.finish()]


def carries_content(event: Event) -> bool:
    return bool(event.text or event.tool_calls) if isinstance(event, Delta) else (
        isinstance(event, Relay) and bool(event.text))


@pytest.mark.parametrize("name", TRANSLATORS)
@settings(max_examples=60, deadline=None)
@given(tokens=TOKENS, points=SPLITS, ending=st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_the_first_token_is_sent_alone_and_nothing_is_lost(name, tokens, points, ending) -> None:
    make, build = TRANSLATORS[name]
    data = build(tokens)
    sends = led(make, cut(data.replace(b"\n", ending), points))
    assert [event for send in sends for event in send] == run(make, [data])
    first = next((send for send in sends if any(map(carries_content, send))), None)
    if first is not None:  # the send with the first token ends with it
        assert carries_content(first[-1])
        assert not any(map(carries_content, first[:-1]))


def test_a_whole_reply_in_one_read_leads_with_its_first_token() -> None:
    sends = led(OllamaTranslator, [ollama_chat(["Hel", "lo", "!"])])
    assert [[e.text for e in send if isinstance(e, Delta)] for send in sends[:2]] == [
        ["Hel"], ["lo", "!"]]


def test_what_follows_the_first_token_in_its_read_is_decoded_after_it_is_sent() -> None:
    """A line past the limit starts right after the first token: the token goes out, then the
    failure (decoding the whole read first would have sent the failure alone)."""
    first = ollama_chat(["Hel", "lo"]).split(b"\n", 1)[0]
    sends = led(OllamaTranslator, [first + b"\n" + b"x" * (MAX_LINE_BYTES + 1)])
    assert [e.text for e in sends[0]] == ["Hel"]
    assert isinstance(sends[1][-1], Failure) and sends[1][-1].kind == "malformed"


@pytest.mark.parametrize("name", TRANSLATORS)
def test_byte_by_byte_gives_the_same_events(name: str) -> None:
    make, build = TRANSLATORS[name]
    data = build(["Hé", "llo", " wörld", " 😀", "\n", "!"])
    assert run(make, [data[i : i + 1] for i in range(len(data))]) == run(make, [data])


@pytest.mark.parametrize("name", TRANSLATORS)
@settings(max_examples=30, deadline=None)
@given(tokens=TOKENS, points=SPLITS, ending=st.sampled_from([b"\r\n", b"\r"]))
def test_crlf_and_cr_line_ends(name: str, tokens: list[str], points: list[int], ending: bytes):
    make, build = TRANSLATORS[name]
    data = build(tokens)
    # JSON escapes CR and LF inside strings, so every raw "\n" here is a line end
    assert run(make, cut(data.replace(b"\n", ending), points)) == run(make, [data])


@pytest.mark.parametrize("name", ["tgi", "llamacpp", "openai"])
@settings(max_examples=30, deadline=None)
@given(tokens=TOKENS, points=SPLITS)
def test_sse_keepalive_comments_are_ignored(name: str, tokens: list[str], points: list[int]):
    make, build = TRANSLATORS[name]
    data = build(tokens)
    noisy = b": ping\n\n" + data.replace(b"\n\n", b"\n\n:\n\n: keep-alive\n")
    assert run(make, cut(noisy, points)) == run(make, [data])


@pytest.mark.parametrize("name", TRANSLATORS)
def test_a_last_line_without_newline_still_counts(name: str) -> None:
    make, build = TRANSLATORS[name]
    data = build(["a", "b"])
    assert run(make, [data.rstrip(b"\n")]) == run(make, [data])


def test_ollama_blank_lines_are_skipped() -> None:
    data = ollama_chat(["x", "y"])
    assert run(OllamaTranslator, [data.replace(b"\n", b"\n\n")]) == run(OllamaTranslator, [data])


# --- what the events say --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(tokens=TOKENS)
def test_ollama_deltas_concatenate_to_the_reply(tokens: list[str]) -> None:
    events = run(OllamaTranslator, [ollama_chat(tokens)])
    assert text_of(events) == "".join(tokens)
    assert events[-1] == Finish("stop", Usage(7, len(tokens)), "llama2")
    assert all(e.text for e in events if isinstance(e, Delta))  # no empty chunks


@settings(max_examples=50, deadline=None)
@given(tokens=TOKENS)
@example(tokens=["\u2028", "hi", "\u00a0"])  # Unicode spaces Lua's %s keeps, as the codec does
def test_raw_deltas_concatenate_to_the_stripped_reply(tokens: list[str]) -> None:
    for data in (tgi(tokens), llamacpp(tokens)):
        events = run(RawTranslator, [data])
        assert text_of(events) == "".join(tokens).strip(LUA_SPACE)
        assert all(e.text for e in events if isinstance(e, Delta))


@settings(max_examples=50, deadline=None)
@given(tokens=TOKENS)
def test_openai_relays_every_payload_unchanged(tokens: list[str]) -> None:
    data = openai_chat(tokens)
    events = run(OpenAITranslator, [data])
    relayed = [e.data for e in events if isinstance(e, Relay)]
    sent = [payload for payload in SseDecoder().feed(data) if payload != "[DONE]"]
    assert relayed == sent
    assert text_of(events) == "".join(tokens)
    assert events[-1] == Finish("stop", Usage(4, len(tokens)), "m")


def test_ollama_finish_reason_and_counts() -> None:
    events = run(OllamaTranslator, [ollama_generate(["a", "b"])])
    assert events == [
        Delta("a", (), "llama2"),
        Delta("b", (), "llama2"),
        Finish("stop", Usage(3, 2), "llama2"),
    ]
    limited = run(lambda: OllamaTranslator(max_tokens=2), [ollama_generate(["a", "b"])])
    assert limited[-1].reason == "length"  # no done_reason, eval_count hit the limit
    assert run(OllamaTranslator, [ollama_chat(["a"], reason="length")])[-1].reason == "length"


def test_ollama_text_on_the_done_line_is_kept() -> None:
    data = line(
        {
            "model": "m",
            "message": {"role": "assistant", "content": "Hi"},
            "done": True,
            "done_reason": "stop",
            "eval_count": 1,
        }
    )
    assert run(OllamaTranslator, [data]) == [Delta("Hi", (), "m"), Finish("stop", Usage(0, 1), "m")]


def test_ollama_tool_calls_become_openai_deltas() -> None:
    call = {"function": {"name": "add", "arguments": {"a": 1}}}
    data = line(
        {
            "model": "m",
            "message": {"role": "assistant", "content": "", "tool_calls": [call]},
            "done": False,
        }
    )
    data += line({"model": "m", "message": {"role": "assistant", "content": ""}, "done": True})
    events = run(OllamaTranslator, [data])
    assert events[0] == Delta(
        "",
        (
            {
                "index": 0,
                "id": "call_0",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a":1}'},
            },
        ),
        "m",
    )


def test_tgi_without_details_counts_tokens_by_index() -> None:
    events = run(RawTranslator, [tgi(["x", "y"], details=False)])
    assert events[-1] == Finish("stop", Usage(0, 3))
    assert run(RawTranslator, [tgi(["x"])])[-1] == Finish("stop", Usage(5, 2))


def test_llamacpp_limit_means_length() -> None:
    assert run(RawTranslator, [llamacpp(["x"], "limit")])[-1] == Finish("length", Usage(9, 1))


def test_raw_trims_like_the_non_streamed_reply() -> None:
    events = run(RawTranslator, [tgi(["  ", " Hello", " world ", " ", "\n"])])
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hello", " world"]


# --- errors, truncation, garbage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "data", "expected"),
    [
        (
            OllamaTranslator,
            line({"model": "m", "message": {"content": "a"}, "done": False})
            + line({"error": "boom"}),
            Failure("upstream_error", "boom"),
        ),
        (
            RawTranslator,
            event({"error": "Input validation error: x", "error_type": "validation"}),
            Failure(
                "upstream_error",
                "Input validation error: x",
                {"message": "Input validation error: x", "type": "validation"},
            ),
        ),
        (
            RawTranslator,
            event({"error": {"code": 500, "message": "boom", "type": "server_error"}}),
            Failure(
                "upstream_error", "boom", {"code": 500, "message": "boom", "type": "server_error"}
            ),
        ),
        (
            OpenAITranslator,
            event({"error": {"message": "boom", "type": "server_error"}}),
            Failure("upstream_error", "boom", {"message": "boom", "type": "server_error"}),
        ),
    ],
)
def test_an_error_frame_ends_the_stream(make, data: bytes, expected: Failure) -> None:
    events = run(make, [data + b"ignored after the error\n"])
    assert events[-1] == expected
    assert sum(isinstance(e, Failure | Finish) for e in events) == 1


@pytest.mark.parametrize("name", TRANSLATORS)
@settings(max_examples=20, deadline=None)
@given(tokens=TOKENS, data=st.data())
def test_a_cut_stream_is_reported_truncated(name: str, tokens: list[str], data) -> None:
    make, build = TRANSLATORS[name]
    whole = build(tokens)
    finals = {
        "openai": b"data: [DONE]",
        "ollama-chat": b'"done":true',
        "ollama-generate": b'"done":true',
        "tgi": b'"generated_text": "',
        "llamacpp": b'"stop": true',
    }
    end = whole.rfind(b"\n", 0, whole.rindex(finals[name])) + 1  # just before the final frame
    size = data.draw(st.integers(min_value=0, max_value=end))
    events = run(make, [whole[:size]])
    assert isinstance(events[-1], Failure) and events[-1].kind == "truncated"


@pytest.mark.parametrize(
    ("make", "garbage"),
    [
        (OllamaTranslator, b"not json\n"),
        (OllamaTranslator, b"[1, 2]\n"),
        (RawTranslator, b"data: {oops\n\n"),
        (RawTranslator, b'data: {"something": "else"}\n\n'),
        (OpenAITranslator, b"data: {oops\n\n"),
    ],
)
def test_a_broken_frame_is_reported(make, garbage: bytes) -> None:
    events = run(make, [garbage])
    assert events == [events[0]] and isinstance(events[0], Failure)
    assert events[0].kind == "malformed"


def test_an_endless_line_is_refused_not_buffered() -> None:
    translator = OllamaTranslator()
    events: list[Event] = []
    for _ in range(20):
        events += translator.feed(b"x" * 65536)
    assert len(events) == 1 and events[0].kind == "malformed"
    assert translator.feed(b"\n") == [] and translator.finish() == []


# --- Kong-compatibility mode ----------------------------------------------------------------------


def test_kong_ollama_keeps_empty_chunks_and_drops_done_text() -> None:
    data = (
        line({"model": "m", "message": {"role": "assistant", "content": ""}, "done": False})
        + b"not json\n"
        + line({"error": "boom"})
        + line(
            {
                "model": "m",
                "message": {"role": "assistant", "content": "late"},
                "done": True,
                "prompt_eval_count": 2,
                "eval_count": 1,
            }
        )
    )
    events = run(lambda: OllamaTranslator(kong_compat=True), [data])
    assert events == [Delta("", (), "m"), Delta(""), Finish(None, Usage(2, 1), "m")]


def test_kong_modes_report_no_truncation() -> None:
    assert run(lambda: OllamaTranslator(kong_compat=True), [line({"model": "m", "done": False})])[
        -1
    ] == Delta("", (), "m")
    cut_openai = openai_chat(["a"]).removesuffix(event("[DONE]"))
    events = run(lambda: OpenAITranslator(kong_compat=True), [cut_openai])
    assert events and not any(isinstance(e, Failure | Finish) for e in events)


def test_kong_openai_relays_even_broken_payloads() -> None:
    events = run(lambda: OpenAITranslator(kong_compat=True), [b"data: {oops\n\n" + event("[DONE]")])
    assert events == [Relay("{oops"), Finish(None)]


# --- the decoders on their own --------------------------------------------------------------------


def test_sse_fields_follow_the_whatwg_rules() -> None:
    decoder = SseDecoder()
    frames = decoder.feed(b"event: x\ndata:a\ndata:  b\nid: 1\nretry: 5\n\nevent: only\n\ndata\n\n")
    assert frames == ["a\n b", ""]
    assert decoder.finish() == []


def test_a_utf8_character_cut_across_reads_survives() -> None:
    splitter = LineSplitter()
    encoded = "é😀\n".encode()
    assert [
        *splitter.feed(encoded[:1]),
        *splitter.feed(encoded[1:3]),
        *splitter.feed(encoded[3:]),
    ] == ["é😀"]


def test_a_bom_opens_the_stream_harmlessly() -> None:
    assert NdjsonDecoder().feed(b'\xef\xbb\xbf{"a":1}\n') == ['{"a":1}']


def test_an_endless_sse_event_is_refused() -> None:
    decoder = SseDecoder(max_line_bytes=100)
    with pytest.raises(FramingError):
        for _ in range(20):
            decoder.feed(b"data: " + b"y" * 50 + b"\n")


@given(st.lists(st.text(max_size=5), max_size=12))
@example(["\x1f"])
def test_trimmed_text_streams_the_stripped_text(pieces: list[str]) -> None:
    trim = TrimmedText()
    assert "".join(trim.push(p) for p in pieces) == "".join(pieces).strip(LUA_SPACE)


def test_a_long_stream_runs_in_constant_memory() -> None:
    """Translator, encoder and tally keep nothing per token: megabytes through, kilobytes held."""
    piece = ollama_chat(["token " * 20] * 100).rsplit(b"\n", 2)[0] + b"\n"  # 100 content lines
    translator, tally = OllamaTranslator(), Tally()
    encoder = ClientStream(route_type="llm/v1/chat", model="m", stamp=ReplyStamp("s", 0))
    tracemalloc.start()
    try:
        for round_ in range(200):
            if round_ == 10:  # warmed up: everything held from here on is growth
                baseline = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
            events = translator.feed(piece)
            tally.observe(events)
            encoder.encode(events)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(events) == 100 and tally.outcome().text_length > 2_000_000
    assert peak - baseline < 256 * 1024
