"""The llama.cpp mock's handlers as pure functions: Call in, reply out (no sockets)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from proxyproof.mocks import generation, llamacpp
from proxyproof.mocks.base import NOT_JSON, Call, JsonReply, MockSettings, Reply, StreamReply

MODEL = "llama-2-7b-chat.Q4_K_M"
SETTINGS = MockSettings(models=(MODEL,))


def call(path: str, body: Any = None, *, raw: bytes | None = None, method: str = "POST",
         scripted_reply: str | None = None) -> Reply:
    data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    try:
        parsed = json.loads(data) if data.strip() else NOT_JSON
    except ValueError:
        parsed = NOT_JSON
    endpoint = next(e for e in llamacpp.KIND.endpoints if e.path == path and e.method == method)
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    reply = endpoint.handler(Call(method, path, {}, {}, headers, data, SETTINGS, parsed,
                               scripted_reply=scripted_reply))
    assert reply.headers["Server"] == "llama.cpp"
    return reply


def events(reply: Reply) -> list[dict]:
    assert isinstance(reply, StreamReply) and reply.status == 200
    assert reply.content_type == "text/event-stream"
    for frame in reply.frames:
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n") and frame.count(b"\n") == 2
    assert b"[DONE]" not in b"".join(reply.frames)
    return [json.loads(frame[len(b"data: "):]) for frame in reply.frames]


def body(reply: Reply, status: int = 200) -> Any:
    assert isinstance(reply, JsonReply), reply
    assert reply.status == status, reply.body
    return reply.body


def failure(reply: Reply, status: int, kind: str) -> str:
    error = body(reply, status)["error"]
    assert (error["code"], error["type"]) == (status, kind)
    return error["message"]


prompts = st.text(min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(prompt=prompts, n_predict=st.integers(-1, 25), seed=st.none() | st.integers(0, 99))
def test_stream_deltas_concatenate_to_the_non_stream_content(prompt: str, n_predict: int,
                                                              seed: int | None) -> None:
    request: dict[str, Any] = {"prompt": prompt, "n_predict": n_predict}
    if seed is not None:
        request["seed"] = seed
    single = body(call("/completion", request))
    *partials, final = events(call("/completion", {**request, "stream": True}))

    assert "".join(p["content"] for p in partials) == single["content"]
    assert all(p["stop"] is False and len(p["tokens"]) == 1 for p in partials)
    assert [p["tokens_predicted"] for p in partials] == list(range(1, len(partials) + 1))
    assert (final["stop"], final["content"], final["tokens"]) == (True, "", [])
    assert final["tokens_predicted"] == single["tokens_predicted"] == len(partials)
    assert final["tokens_evaluated"] == generation.count_tokens(prompt)
    full = generation.reply_tokens(MODEL, prompt, seed)
    cut = 0 <= n_predict < len(full)
    assert single["stop_type"] == ("limit" if cut else "eos")
    assert single["content"] == "".join(full[:n_predict] if cut else full)
    assert isinstance(single["timings"]["predicted_ms"], float)
    assert single["generation_settings"]["n_predict"] == n_predict


def test_n_predict_beats_max_completion_tokens_beats_max_tokens() -> None:
    def predicted(request: dict[str, Any]) -> int:
        return body(call("/completion", {"prompt": "Tell me a long story", **request}))[
            "tokens_predicted"]

    assert predicted({"n_predict": 1, "max_completion_tokens": 2, "max_tokens": 3}) == 1
    assert predicted({"max_completion_tokens": 2, "max_tokens": 3}) == 2
    assert predicted({"max_tokens": 3}) == 3
    assert predicted({"n_predict": "two", "max_tokens": 3}) == 3  # wrong type: ignored
    assert predicted({"n_predict": 0}) == 0


def test_stop_words_only_count_as_an_array() -> None:
    full = "".join(generation.reply_tokens(MODEL, "Why?", None))
    word = full.split()[2]
    stopped = body(call("/completion", {"prompt": "Why?", "stop": [word]}))
    assert stopped["content"] == full[: full.index(word)]
    assert (stopped["stop_type"], stopped["stopping_word"]) == ("word", word)
    ignored = body(call("/completion", {"prompt": "Why?", "stop": word}))
    assert (ignored["content"], ignored["stop_type"], ignored["stopping_word"]) == (full, "eos",
                                                                                   "")


def test_prompt_forms() -> None:
    tokens = body(call("/completions", {"prompt": [12, 34, 56]}))
    assert tokens["tokens_evaluated"] == 3
    mixed = body(call("/completion", {"prompt": [1, "Hello world"]}))
    assert mixed["tokens_evaluated"] == 3
    several = body(call("/completion", {"prompt": ["first", "second"]}))
    assert [r["index"] for r in several] == [0, 1]
    assert several[0]["content"] != several[1]["content"]
    one = body(call("/completion", {"prompt": ["only"]}))
    assert isinstance(one, dict) and one["content"] == body(call("/completion",
                                                                 {"prompt": "only"}))["content"]
    streamed = events(call("/completion", {"prompt": ["a", "b"], "stream": True}))
    assert [e["index"] for e in streamed if e["stop"]] == [0, 1]


def test_return_tokens_lists_the_generated_ids() -> None:
    reply = body(call("/completion", {"prompt": "x", "return_tokens": True}))
    assert reply["tokens"] == [generation.token_id(t) for t in generation.tokenize(
        reply["content"])]
    assert body(call("/completion", {"prompt": "x"}))["tokens"] == []


def test_errors_have_the_real_codes_and_nested_shape() -> None:
    assert failure(call("/completion", raw=b"not json"), 500, "server_error") == (
        "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while "
        "parsing value - invalid literal; last read: 'no'")
    assert "empty input" in failure(call("/completion", raw=b""), 500, "server_error")
    assert failure(call("/completion", {"n_predict": 3}), 400, "invalid_request_error") == (
        "[json.exception.out_of_range.403] key 'prompt' not found")
    assert failure(call("/completion", [1]), 400, "invalid_request_error") == (
        "[json.exception.type_error.304] cannot use at() with array")
    assert failure(call("/completion", {"prompt": 5}), 400, "invalid_request_error").startswith(
        '"prompt" must be a string')
    assert failure(call("/completion", {"prompt": [{"a": 1}]}), 400,
                   "invalid_request_error").startswith('element of "prompt" must be')
    assert failure(call("/props", {}, method="POST"), 501, "not_supported_error").startswith(
        "This server does not support changing global properties")


def test_health_props_tokenize_detokenize() -> None:
    assert body(call("/health", method="GET")) == {"status": "ok"}
    props = body(call("/props", method="GET"))
    assert props["model_path"] == f"models/{MODEL}.gguf" and props["total_slots"] == 1
    assert props["default_generation_settings"]["params"]["top_k"] == 40

    plain = body(call("/tokenize", {"content": "Hello world"}))["tokens"]
    assert plain == [generation.token_id("Hello"), generation.token_id(" world")]
    special = body(call("/tokenize", {"content": "Hello", "add_special": True,
                                      "with_pieces": True}))["tokens"]
    assert special == [{"id": 1, "piece": "<s>"},
                       {"id": generation.token_id("Hello"), "piece": "Hello"}]
    assert body(call("/tokenize", {})) == {"tokens": []}

    reply = body(call("/completion", {"prompt": "q", "return_tokens": True}))
    text = body(call("/detokenize", {"tokens": reply["tokens"]}))
    assert text == {"content": reply["content"]}  # generated text round-trips
    assert body(call("/detokenize", {})) == {"content": ""}
    assert failure(call("/detokenize", {"tokens": ["x"]}), 500, "server_error").startswith(
        "[json.exception.type_error.302]")


def test_raw_adapter_echoes_inputs_and_relays_completion_events() -> None:
    inputs = "<s>[INST] <<SYS>> You are helpful <</SYS>> Hi [/INST]"
    reply = generation.generate(MODEL, inputs, prompt_tokens=0, max_tokens=4)
    raw = body(call("/raw", {"inputs": inputs, "parameters": {"max_new_tokens": 4,
                                                              "top_k": 40, "top_p": 1.0}}))
    assert raw == {"data": [{"generated_text": inputs + reply.text}]}
    assert raw["data"][0]["generated_text"].split("[/INST]")[-1].strip() == reply.text.strip()

    for request in ({"inputs": inputs, "parameters": {"max_new_tokens": 4, "stream": True}},
                    {"inputs": inputs, "stream": True, "parameters": {"max_new_tokens": 4}}):
        *partials, final = events(call("/raw", request))
        assert "".join(p["content"] for p in partials) == reply.text
        assert (final["stop"], final["stop_type"]) == (True, "limit")
    assert failure(call("/raw", {"parameters": {}}), 400, "invalid_request_error") == (
        '"inputs" must be provided')


def test_scripted_reply_replaces_the_generated_text() -> None:
    reply = body(call("/completion", {"prompt": "q"}, scripted_reply="Scripted."))
    assert reply["content"] == "Scripted." and reply["tokens_predicted"] == 1


def test_kind_replies() -> None:
    kind = llamacpp.KIND
    assert kind.default_port == 8080
    headers = CIMultiDictProxy(CIMultiDict())
    anything = Call("GET", "/nope", {}, {}, headers, b"", SETTINGS)
    assert failure(kind.loading(anything, 3.0), 503, "unavailable_error") == "Loading model"
    assert failure(kind.not_found(anything), 404, "not_found_error") == "File Not Found"
    assert failure(kind.unauthorized(anything), 401, "authentication_error") == "Invalid API Key"
    assert kind.stream_error("boom") == (
        b'data: {"error":{"code":500,"message":"boom","type":"server_error"}}\n\n')
