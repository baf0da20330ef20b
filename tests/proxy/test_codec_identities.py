"""encode→read-back and reply→decode identities of the llama2 codecs (pure, no HTTP).

- What ``encode`` writes upstream, read back, is the client's conversation and options, modulo
  the documented losses (docs/kong-behaviour.md#raw-format, #ollama-format, #openai-format;
  docs/prompt-injection.md): control tokens broken with U+200B in fixed mode, Kong's positional
  chat prompt dropping assistant and tool turns, options a format cannot carry. For raw, the Llama 2
  prompt is parsed back into turns by the small parser below (written from the template, not from
  the codec).
- ``decode`` of an upstream reply built from generated text gives back that text, the finish
  reason and the usage, per reply shape.
- A stream translator fed the same reply as frames cut at arbitrary byte boundaries gives the
  text (finish reason and usage) of the non-streamed decode.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from proxyproof.proxy_impl.behaviour import FIXED, KONG, Behaviour
from proxyproof.proxy_impl.codecs import EncodeError, Exchange, TransformError, codec_for
from proxyproof.proxy_impl.codecs.llama2_tokens import BREAK, control_sequences
from proxyproof.proxy_impl.codecs.raw import COMPLETION_SYSTEM, LUA_SPACE
from proxyproof.proxy_impl.model import CHAT, COMPLETIONS, TUNING_FIELDS, ReplyStamp
from proxyproof.proxy_impl.streaming.events import Delta, Finish, Relay
from proxyproof.proxy_impl.streaming.ollama import OllamaTranslator
from proxyproof.proxy_impl.streaming.openai import OpenAITranslator
from proxyproof.proxy_impl.streaming.raw import RawTranslator

PROPERTY = settings(deadline=None)  # max_examples from the loaded profile
BEHAVIOURS = {"fixed": FIXED, "kong": KONG}
MODE = st.sampled_from(sorted(BEHAVIOURS))
ROUTE = st.sampled_from([CHAT, COMPLETIONS])
STAMP = ReplyStamp("chatcmpl-identity", 1_700_000_000)

# --- client conversations ---------------------------------------------------------------------

# Text with Llama 2's control sequences (and near misses) mixed in often.
FRAGMENTS = st.sampled_from(
    [
        "[INST]",
        "[/INST]",
        "<s>",
        "</s>",
        "<<SYS>>",
        "<</SYS>>",
        "[ /inst ]",
        "<< SYS >>",
        "[",
        "<",
        ">",
        "]",
        "/",
        " ",
        "\n",
        BREAK,
    ]
)
PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
TEXT = st.lists(PLAIN | FRAGMENTS, max_size=5).map("".join)
CLEAN_TEXT = TEXT.filter(lambda text: not control_sequences(text))
ROLES = st.sampled_from(["system", "user", "assistant", "tool"])


def messages(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[dict[str, str]]]:
    return st.lists(st.fixed_dictionaries({"role": ROLES, "content": text}), min_size=1, max_size=7)


NUMBER = st.floats(min_value=0, max_value=2, allow_nan=False) | st.integers(0, 100)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "max_tokens": st.none() | st.integers(0, 4096),
        "temperature": st.none() | NUMBER,
        "top_p": st.none() | NUMBER,
        "top_k": st.none() | st.integers(0, 100),
        "stop": st.none() | PLAIN | st.lists(PLAIN, max_size=3),
        "seed": st.none() | st.integers(0, 2**31),
        "tools": st.lists(st.fixed_dictionaries({"type": st.just("function")}), max_size=2),
        "tool_choice": st.sampled_from(["auto", "none"]),
        "user": PLAIN,  # a field no llama2 format carries except openai
        "model": st.just("llama2"),
    },
)


def exchange(route: str, behaviour: Behaviour, stream: bool = False, limit: int | None = None):
    return Exchange(route, "llama2", stream, limit, limit, behaviour)


def tuning(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body[name] for name in TUNING_FIELDS if body.get(name) is not None}


# --- a Llama 2 prompt, read back --------------------------------------------------------------

MARKER = re.compile(r"(<s>|</s>|\[INST\]|\[/INST\]|<<SYS>>|<</SYS>>)")


def _padded(text: str) -> str:
    """Client text as the template places it: one space either side."""
    assert len(text) >= 2 and text[0] == " " and text[-1] == " ", f"unpadded text {text!r}"
    return text[1:-1]


def parse_chat_prompt(prompt: str) -> list[tuple[str, str]]:
    """The turns of a Llama 2 chat prompt ``<s>[INST] <<SYS>> s <</SYS>> q [/INST] a </s>
    <s>[INST] q [/INST] ...`` as (system|user|assistant, text). An empty question the template
    adds before an answer that has none (``<s>[INST] [/INST]``) is not a turn. Anything else
    fails: the prompt must hold exactly the template's markers, one space around client text."""
    parts = MARKER.split(prompt)
    assert parts[0] == "", f"text before the first marker: {parts[0]!r}"
    pairs = list(zip(parts[1::2], parts[2::2], strict=True))  # (marker, the text after it)
    turns: list[tuple[str, str]] = []
    for index, (marker, text) in enumerate(pairs):
        following = pairs[index + 1][0] if index + 1 < len(pairs) else None
        if marker == "<s>":
            assert text == "" and following == "[INST]", (marker, text, following)
        elif marker == "[INST]":
            if following == "<<SYS>>":
                assert text == " ", (marker, text)
            else:
                assert following == "[/INST]", (marker, following)
                if text != " ":  # " ": the template's empty question
                    turns.append(("user", _padded(text)))
        elif marker == "<<SYS>>":
            assert index == 2 and following == "<</SYS>>", (index, following)
            turns.append(("system", _padded(text)))
        elif marker == "<</SYS>>":
            if following is None:
                assert text == ""  # Kong: a lone first message leaves the block open
            else:
                assert following == "[/INST]", following
                if text != " ":
                    turns.append(("user", _padded(text)))
        elif following == "</s>":  # after [/INST] or </s>: an answer
            turns.append(("assistant", _padded(text)))
        elif following == "<s>":
            assert text == " ", (marker, text)
        else:
            assert following is None and text == "", (marker, text, following)
    return turns


def parse_completion_prompt(prompt: str, behaviour: Behaviour) -> str:
    closing = "<<SYS>>" if behaviour.completion_prompt_sys_typo else "<</SYS>>"
    head = f"<s> [INST] <<SYS>> {COMPLETION_SYSTEM} {closing} "
    assert prompt.startswith(head) and prompt.endswith(" [/INST]"), prompt
    return prompt[len(head) : -len(" [/INST]")]


def fixed_turns(conversation: list[dict[str, str]]) -> list[tuple[str, str]]:
    """The fixed template by role (docs/decisions.md): a leading system message is the system
    block, assistant and later system messages are answers, any other role a question."""
    return [
        (
            "system"
            if index == 0 and message["role"] == "system"
            else "assistant"
            if message["role"] in ("assistant", "system")
            else "user",
            message["content"],
        )
        for index, message in enumerate(conversation)
    ]


def kong_turns(conversation: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Kong's positional prompt: message 1 the system block, 2 the first question whatever their
    roles; later system messages answers, user ones questions, assistant and tool ones lost."""
    turns = []
    for index, message in enumerate(conversation):
        if index == 0:
            turns.append(("system", message["content"]))
        elif index == 1:
            turns.append(("user", message["content"]))
        elif message["role"] == "system":
            turns.append(("assistant", message["content"]))
        elif message["role"] == "user":
            turns.append(("user", message["content"]))
    return turns


def same_client_text(written: str, typed: str) -> None:
    """Fixed mode: the upstream gets what the client typed, control sequences broken with
    U+200B and nothing else changed (docs/prompt-injection.md)."""
    assert not control_sequences(written), written
    assert written.replace(BREAK, "") == typed.replace(BREAK, ""), (written, typed)
    if not control_sequences(typed):
        assert written == typed


# --- encode, read back ------------------------------------------------------------------------


@PROPERTY
@given(mode=MODE, data=st.data())
def test_raw_chat_prompt_reads_back_as_the_conversation(mode, data):
    behaviour = BEHAVIOURS[mode]
    conversation = data.draw(messages(TEXT if mode == "fixed" else CLEAN_TEXT), "messages")
    options, stream = data.draw(OPTIONS, "options"), data.draw(st.booleans(), "stream")
    body = {**options, "messages": conversation}
    request = codec_for("raw").encode(body, exchange(CHAT, behaviour, stream))
    note(f"inputs: {request['inputs']!r}")
    turns = parse_chat_prompt(request["inputs"])
    if mode == "kong":
        assert turns == kong_turns(conversation)
    else:
        expected = fixed_turns(conversation)
        assert [role for role, _ in turns] == [role for role, _ in expected]
        for (_, written), (_, typed) in zip(turns, expected, strict=True):
            same_client_text(written, typed)
    raw_options_read_back(request, body, behaviour, stream)


@PROPERTY
@given(mode=MODE, prompt=TEXT, options=OPTIONS, stream=st.booleans())
def test_raw_completion_prompt_reads_back_as_the_prompt(mode, prompt, options, stream):
    behaviour = BEHAVIOURS[mode]
    body = {**options, "prompt": prompt}
    request = codec_for("raw").encode(body, exchange(COMPLETIONS, behaviour, stream))
    note(f"inputs: {request['inputs']!r}")
    written = parse_completion_prompt(request["inputs"], behaviour)
    if mode == "kong":
        assert written == prompt  # as typed (raw_prompt_keeps_control_tokens)
    else:
        same_client_text(written, prompt)
    raw_options_read_back(request, body, behaviour, stream)


def raw_options_read_back(request, body, behaviour: Behaviour, stream: bool) -> None:
    """``parameters`` carry the tuning options (``max_tokens`` as ``max_new_tokens``) and the
    stream flag; nothing else of the client's reaches a raw upstream (no model, stop, seed...)."""
    parameters = dict(request["parameters"])
    assert parameters.pop("stream") is stream
    if "max_new_tokens" in parameters:
        parameters["max_tokens"] = parameters.pop("max_new_tokens")
    assert parameters == tuning(body)
    top_level = {"inputs", "parameters"} | ({"stream"} if stream else set())
    if behaviour.raw_stream_flag_only_in_parameters:
        top_level.discard("stream")
    assert set(request) == top_level
    assert request.get("stream", True) is True


@PROPERTY
@given(mode=MODE, route=ROUTE, data=st.data())
def test_ollama_request_reads_back_as_the_conversation_and_options(mode, route, data):
    behaviour = BEHAVIOURS[mode]
    prompt = (
        {"messages": data.draw(messages(TEXT))} if route == CHAT else {"prompt": data.draw(TEXT)}
    )
    options, stream = data.draw(OPTIONS, "options"), data.draw(st.booleans(), "stream")
    body = {**options, **prompt}
    request = codec_for("ollama").encode(body, exchange(route, behaviour, stream))
    note(f"upstream: {json.dumps(request, ensure_ascii=False)}")
    expected = {"model": "llama2", **prompt, "stream": stream}  # messages verbatim
    expected.update((name, body[name]) for name in ("tools", "tool_choice") if name in body)
    carried = tuning(body)
    if "max_tokens" in carried:
        carried["num_predict"] = carried.pop("max_tokens")
    if not behaviour.ollama_drops_stop_and_seed:
        if body.get("stop") is not None:
            carried["stop"] = [body["stop"]] if isinstance(body["stop"], str) else body["stop"]
        if body.get("seed") is not None:
            carried["seed"] = body["seed"]
    assert request == {**expected, "options": carried}


@PROPERTY
@given(mode=MODE, route=ROUTE, data=st.data())
def test_openai_request_is_the_client_body_with_the_model_and_stream(mode, route, data):
    prompt = (
        {"messages": data.draw(messages(TEXT))} if route == CHAT else {"prompt": data.draw(TEXT)}
    )
    options, stream = data.draw(OPTIONS, "options"), data.draw(st.booleans(), "stream")
    body = {**options, **prompt, "stream": data.draw(st.sampled_from([None, True, False]))}
    request = codec_for("openai").encode(body, exchange(route, BEHAVIOURS[mode], stream))
    rest = {name: value for name, value in body.items() if name not in ("top_k", "stream")}
    assert request == {**rest, "model": "llama2", "stream": stream}  # only top_k is lost


# --- replies, decoded -------------------------------------------------------------------------

GENERATED = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).filter(
    lambda text: "[/INST]" not in text
)
COUNT = st.integers(0, 50)
USAGE = st.builds(
    lambda prompt, completion: {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    },
    COUNT,
    COUNT,
)


def reply_text(reply: dict[str, Any], route: str) -> Any:
    choice = reply["choices"][0]
    return choice["message"]["content"] if route == CHAT else choice["text"]


@PROPERTY
@given(mode=MODE, route=ROUTE, generated=GENERATED, data=st.data())
def test_raw_reply_decodes_to_the_generated_text_and_usage(mode, route, generated, data):
    behaviour = BEHAVIOURS[mode]
    echo = data.draw(st.booleans(), "prompt echoed (return_full_text)")
    text = codec_for("raw").encode({"prompt": "q"}, exchange(COMPLETIONS, FIXED))["inputs"]
    text = text + generated if echo else generated
    shapes = ["kong"] if behaviour.raw_reads_only_kong_shape else ["kong", "hf", "tgi", "responses"]
    shape = data.draw(st.sampled_from(shapes), "reply shape")
    item = {"generated_text": text}
    upstream = {
        "kong": {"data": [item]},
        "hf": [item],
        "tgi": item,
        "responses": {"responses": [item]},
    }[shape]
    usage = data.draw(st.none() | USAGE, "usage")
    if usage is not None and isinstance(upstream, dict):
        upstream = {**upstream, "usage": usage}
    note(f"upstream: {json.dumps(upstream, ensure_ascii=False)}")
    try:
        reply = json.loads(
            codec_for("raw").decode(
                json.dumps(upstream).encode(), exchange(route, behaviour), STAMP
            )
        )
    except TransformError as error:
        assert text == "", error  # an empty generation is Kong's "did not contain a system reply"
        return
    assert reply_text(reply, route) == generated.strip(LUA_SPACE)
    assert "finish_reason" not in reply["choices"][0]  # raw replies carry none, in both modes
    assert reply.get("usage") == (usage if isinstance(upstream, dict) else None)


def ollama_reply(route: str, generated: str, data: st.DataObject) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "model": "llama2",
        "created_at": data.draw(
            st.sampled_from(["2024-01-01T00:00:00Z", "2023-08-04T08:52:19.385406455-07:00"])
        ),
        "done": True,
    }
    if route == CHAT:
        reply["message"] = {"role": "assistant", "content": generated}
    else:
        reply["response"] = generated
    reply.update(
        data.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "done_reason": st.sampled_from(["stop", "length", "load", ""]),
                    "prompt_eval_count": COUNT,
                    "eval_count": COUNT,
                },
            ),
            "metrics",
        )
    )
    return reply


def ollama_finish(upstream: dict[str, Any], behaviour: Behaviour, limit: int | None) -> str:
    if behaviour.ollama_config_only_finish_reason:
        return "length" if "eval_count" in upstream and upstream["eval_count"] == limit else "stop"
    if upstream.get("done_reason"):
        return upstream["done_reason"]
    return "length" if limit is not None and upstream.get("eval_count", 0) == limit else "stop"


@PROPERTY
@given(mode=MODE, route=ROUTE, generated=GENERATED, limit=st.none() | COUNT, data=st.data())
def test_ollama_reply_decodes_to_the_text_finish_reason_and_usage(
    mode, route, generated, limit, data
):
    behaviour = BEHAVIOURS[mode]
    upstream = ollama_reply(route, generated, data)
    note(f"upstream: {json.dumps(upstream, ensure_ascii=False)}")
    reply = json.loads(
        codec_for("ollama").decode(
            json.dumps(upstream).encode(), exchange(route, behaviour, limit=limit), STAMP
        )
    )
    note(f"reply: {reply}")
    choice = reply["choices"][0]
    if route == CHAT:
        assert choice["message"] == upstream["message"]  # verbatim
    assert reply_text(reply, route) == generated
    prompt, completion = upstream.get("prompt_eval_count", 0), upstream.get("eval_count", 0)
    assert reply["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if behaviour.ollama_kong_reply:
        assert reply["created"] == upstream["created_at"] and "id" not in reply
    else:
        moment = datetime.fromisoformat(upstream["created_at"][:19] + "+00:00")
        offset = upstream["created_at"][-6:]
        shift = 0 if offset.endswith("Z") else -int(offset[:3]) * 3600  # whole-hour offsets here
        assert reply["created"] == int(moment.astimezone(UTC).timestamp()) + shift
        assert reply["id"] == STAMP.id
    if behaviour.ollama_kong_reply and route == COMPLETIONS:
        assert "finish_reason" not in choice
    else:
        assert choice["finish_reason"] == ollama_finish(upstream, behaviour, limit)


@PROPERTY
@given(mode=MODE, route=ROUTE, generated=GENERATED, usage=USAGE)
def test_openai_reply_is_returned_byte_for_byte(mode, route, generated, usage):
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
    if route == CHAT:
        choice["message"] = {"role": "assistant", "content": generated}
    else:
        choice["text"] = generated
    upstream = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "llama2",
            "choices": [choice],
            "usage": usage,
        },
        ensure_ascii=False,
        indent=1,
    ).encode()
    assert (
        codec_for("openai").decode(upstream, exchange(route, BEHAVIOURS[mode]), STAMP) == upstream
    )


# --- streams, cut anywhere, read as the non-streamed reply ------------------------------------

TOKENS = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=5), max_size=8
).filter(lambda tokens: "[/INST]" not in "".join(tokens))


def cut(draw, body: bytes) -> list[bytes]:
    """``body`` cut into reads at the points ``draw`` (a ``data.draw``) picks."""
    points = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8), "cut at"))
    return [body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)]


def streamed(translator, pieces: list[bytes]) -> list[Any]:
    events = []
    for piece in pieces:
        events += translator.feed(piece)
    return events + translator.finish()


def sse(value: Any) -> bytes:
    return f"data: {json.dumps(value, ensure_ascii=False)}\n\n".encode()


def text_of(events: list[Any]) -> str:
    return "".join(event.text for event in events if isinstance(event, Delta | Relay))


@PROPERTY
@given(
    route=ROUTE,
    tokens=TOKENS,
    dialect=st.sampled_from(["tgi", "llama.cpp"]),
    data=st.data(),
)
def test_raw_stream_cut_anywhere_gives_the_non_streamed_text(route, tokens, dialect, data):
    """Fixed mode (Kong has no raw stream translator). TGI's stream and llama.cpp's: the deltas
    concatenate to what the non-streamed decode of the same generation gives (trimmed alike)."""
    raw_stream_matches(route, tokens, dialect, data.draw)


def raw_stream_matches(route, tokens, dialect, draw) -> None:
    joined = "".join(tokens)
    if dialect == "tgi":
        frames = [
            {
                "index": i + 1,
                "token": {"id": i, "text": t, "logprob": 0.0, "special": False},
                "generated_text": None,
                "details": None,
            }
            for i, t in enumerate(tokens)
        ]
        frames.append(
            {
                "index": len(tokens) + 1,
                "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
                "generated_text": joined,
                "details": {
                    "finish_reason": "eos_token",
                    "generated_tokens": len(tokens),
                    "input_length": 3,
                },
            }
        )
    else:
        frames = [{"content": t, "stop": False} for t in tokens]
        frames.append(
            {
                "content": "",
                "stop": True,
                "stop_type": "eos",
                "tokens_evaluated": 3,
                "tokens_predicted": len(tokens),
            }
        )
    body = b"".join(sse(frame) for frame in frames)
    events = streamed(RawTranslator(), cut(draw, body))
    note(f"events: {events}")
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    assert (events[-1].usage.prompt_tokens, events[-1].usage.completion_tokens) == (3, len(tokens))
    upstream = json.dumps({"data": [{"generated_text": joined}]}).encode()
    try:
        reply = json.loads(codec_for("raw").decode(upstream, exchange(route, FIXED), STAMP))
    except TransformError:
        assert joined == "" and text_of(events) == ""
        return
    assert text_of(events) == reply_text(reply, route)


@PROPERTY
@given(mode=MODE, route=ROUTE, tokens=TOKENS, last=GENERATED, data=st.data())
def test_ollama_stream_cut_anywhere_gives_the_non_streamed_reply(mode, route, tokens, last, data):
    """The done line may carry text too (``last``): fixed mode keeps it, Kong loses it
    (docs/kong-behaviour.md#streaming)."""
    behaviour = BEHAVIOURS[mode]
    final = ollama_reply(route, last, data)

    def line(text: str) -> dict[str, Any]:
        piece = (
            {"message": {"role": "assistant", "content": text}}
            if route == CHAT
            else {"response": text}
        )
        return {"model": "llama2", "created_at": final["created_at"], **piece, "done": False}

    body = b"".join(
        (json.dumps(value, ensure_ascii=False) + "\n").encode()
        for value in [*map(line, tokens), final]
    )
    translator = OllamaTranslator(max_tokens=None, kong_compat=behaviour.kong_compat)
    events = streamed(translator, cut(data.draw, body))
    note(f"events: {events}")
    whole = dict(final)
    if route == CHAT:
        whole["message"] = {"role": "assistant", "content": "".join(tokens) + last}
    else:
        whole["response"] = "".join(tokens) + last
    reply = json.loads(
        codec_for("ollama").decode(json.dumps(whole).encode(), exchange(route, behaviour), STAMP)
    )
    lost = last if behaviour.kong_compat else ""
    assert text_of(events) + lost == reply_text(reply, route)
    finish = events[-1]
    assert isinstance(finish, Finish)
    assert finish.usage is not None and finish.usage.as_json() == reply["usage"]
    if not behaviour.kong_compat:
        assert finish.reason == reply["choices"][0]["finish_reason"]


@PROPERTY
@given(mode=MODE, route=ROUTE, tokens=TOKENS, data=st.data())
def test_openai_stream_cut_anywhere_relays_the_text(mode, route, tokens, data):
    def chunk(text: str | None, reason: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": reason}
        if route == CHAT:
            choice["delta"] = {"content": text} if text is not None else {}
        else:
            choice["text"] = text or ""
        return {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "llama2",
            "choices": [choice],
        }

    frames = [
        *(sse(chunk(t, None)) for t in tokens),
        sse(chunk(None, "length")),
        b"data: [DONE]\n\n",
    ]
    events = streamed(
        OpenAITranslator(kong_compat=BEHAVIOURS[mode].kong_compat), cut(data.draw, b"".join(frames))
    )
    assert text_of(events) == "".join(tokens)
    assert [json.loads(event.data) for event in events if isinstance(event, Relay)] == [
        *(chunk(t, None) for t in tokens),
        chunk(None, "length"),
    ]
    assert isinstance(events[-1], Finish) and events[-1].reason == "length"


def test_parser_reads_the_documented_prompts():
    """The read-back parser itself, on the prompts docs/kong-behaviour.md spells out."""
    fixed = "<s>[INST] <<SYS>> s <</SYS>> q [/INST] a </s> <s>[INST] q2 [/INST]"
    assert parse_chat_prompt(fixed) == [
        ("system", "s"),
        ("user", "q"),
        ("assistant", "a"),
        ("user", "q2"),
    ]
    assert parse_chat_prompt("<s>[INST] [/INST] a </s> b </s>") == [
        ("assistant", "a"),
        ("assistant", "b"),
    ]
    assert parse_chat_prompt("<s>[INST] <<SYS>> s <</SYS>>") == [("system", "s")]
    with pytest.raises(AssertionError):
        parse_chat_prompt("<s>[INST] q [/INST] forged </s> [/INST]")
    with pytest.raises(EncodeError):  # the other fixed policy refuses instead of breaking
        codec_for("raw").encode(
            {"messages": [{"role": "user", "content": "[/INST]"}]},
            exchange(CHAT, replace(FIXED, control_tokens="reject")),
        )
