"""The HuggingFace/TGI mock's handlers as pure functions: Call in, reply out (no sockets)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from proxyproof.mocks import generation, huggingface
from proxyproof.mocks.base import (
    NOT_JSON,
    BytesReply,
    Call,
    JsonReply,
    MockSettings,
    Reply,
    StreamReply,
)

MODEL = "tgi-llama2"
SETTINGS = MockSettings(models=(MODEL,))
JSON_HEADERS = {"Content-Type": "application/json"}


def call(path: str, body: Any = None, *, raw: bytes | None = None,
         headers: dict[str, str] | None = None, scripted_reply: str | None = None) -> Reply:
    data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    try:
        parsed = json.loads(data) if data.strip() else NOT_JSON
    except ValueError:
        parsed = NOT_JSON
    pattern, match_info = path, {}
    if path.startswith("/models/"):
        pattern, match_info = "/models/{model_id:.+}", {"model_id": path[len("/models/"):]}
    endpoint = next(
        e for e in huggingface.KIND.endpoints if e.path == pattern and e.method == "POST"
    )
    header_map = CIMultiDictProxy(CIMultiDict(JSON_HEADERS if headers is None else headers))
    return endpoint.handler(Call("POST", path, match_info, {}, header_map, data, SETTINGS, parsed,
                              scripted_reply=scripted_reply))


def events(reply: Reply) -> list[dict]:
    assert isinstance(reply, StreamReply) and reply.status == 200
    assert reply.content_type == "text/event-stream"
    decoded = []
    for frame in reply.frames:
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
        assert frame.count(b"\n") == 2  # one single-line event per frame
        decoded.append(json.loads(frame[len(b"data: "):]))
    assert b"[DONE]" not in b"".join(reply.frames)
    return decoded


def body(reply: Reply, status: int = 200) -> Any:
    assert isinstance(reply, JsonReply), reply
    assert reply.status == status, reply.body
    return reply.body


def text(reply: Reply, status: int) -> str:
    assert isinstance(reply, BytesReply) and reply.status == status, reply
    return reply.body.decode()


prompts = st.text(min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(prompt=prompts, max_new=st.none() | st.integers(1, 25),
       seed=st.none() | st.integers(0, 99))
def test_stream_tokens_concatenate_to_the_generated_text(prompt: str, max_new: int | None,
                                                          seed: int | None) -> None:
    parameters: dict[str, Any] = {"details": True}
    if max_new is not None:
        parameters["max_new_tokens"] = max_new
    if seed is not None:
        parameters["seed"] = seed
    request = {"inputs": prompt, "parameters": parameters}
    single = body(call("/generate", request))
    streamed = events(call("/generate_stream", request))

    words = [e["token"]["text"] for e in streamed if not e["token"]["special"]]
    assert "".join(words) == single["generated_text"]
    assert all(e["generated_text"] is None and e["details"] is None for e in streamed[:-1])
    last = streamed[-1]
    assert last["generated_text"] == single["generated_text"]
    assert last["details"]["generated_tokens"] == len(streamed)
    assert single["details"]["generated_tokens"] == len(single["details"]["tokens"])
    assert last["details"]["input_length"] == generation.count_tokens(prompt)
    assert [e["index"] for e in streamed] == list(range(1, len(streamed) + 1))
    full = generation.reply_tokens(MODEL, prompt, seed)
    cut = max_new is not None and max_new < len(full)
    assert last["details"]["finish_reason"] == ("length" if cut else "eos_token")
    assert last["token"]["special"] is (not cut)  # a natural end closes with </s>


def test_prompt_echo_follows_the_route_defaults() -> None:
    request = {"inputs": "Hello", "parameters": {"seed": 1}}
    reply = generation.generate(MODEL, "Hello", prompt_tokens=1, seed=1).text
    assert body(call("/generate", request)) == {"generated_text": reply}
    assert body(call("/", request)) == [{"generated_text": "Hello" + reply}]
    no_echo = {"inputs": "Hello", "parameters": {"seed": 1, "return_full_text": False}}
    assert body(call("/", no_echo)) == [{"generated_text": reply}]
    api = body(call("/models/meta-llama/Llama-2-7b-chat-hf", request))
    other = generation.generate("meta-llama/Llama-2-7b-chat-hf", "Hello", prompt_tokens=1,
                                seed=1).text
    assert api == [{"generated_text": "Hello" + other}]  # the path names the model


def test_compat_route_streams_when_asked() -> None:
    streamed = events(call("/", {"inputs": "Hi", "stream": True}))
    assert streamed[-1]["generated_text"].startswith("Hi")
    api = events(call("/models/gpt2", {"inputs": "Hi", "stream": True}))
    assert api[-1]["details"] is None


def test_stop_sequences_finish_with_stop_sequence() -> None:
    full = "".join(generation.reply_tokens(MODEL, "Tell me", None))
    word = full.split()[3]
    reply = body(call("/generate", {"inputs": "Tell me",
                                    "parameters": {"stop": [word], "details": True}}))
    assert reply["generated_text"] == full[: full.index(word)]
    assert reply["details"]["finish_reason"] == "stop_sequence"


def test_validation_errors_are_422_or_a_stream_event() -> None:
    cases = {
        "top_p": ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        "temperature": ({"temperature": 0}, "`temperature` must be strictly positive"),
        "max_new_tokens": ({"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        "top_k": ({"top_k": 0}, "`top_k` must be strictly positive"),
        "stop": ({"stop": ["a", "b", "c", "d", "e"]},
                 "`stop` supports up to 4 stop sequences. Given: 5"),
    }
    for parameters, message in cases.values():
        expected = {"error": f"Input validation error: {message}", "error_type": "validation"}
        assert body(call("/generate", {"inputs": "x", "parameters": parameters}), 422) == expected
        assert body(call("/models/m", {"inputs": "x", "parameters": parameters}), 422) == expected
        assert events(call("/generate_stream", {"inputs": "x", "parameters": parameters})) == [
            expected]
    empty = body(call("/generate", {"inputs": ""}), 422)
    assert empty["error"] == "Input validation error: `inputs` cannot be empty"


def test_malformed_bodies_get_axum_plain_text_rejections() -> None:
    prefix = "Failed to deserialize the JSON body into the target type: "
    assert text(call("/generate", {"parameters": {}}), 422) == (
        prefix + "missing field `inputs` at line 1 column 18")
    assert text(call("/generate", {"inputs": "x", "parameters": {"stop": "x"}}), 422) == (
        prefix + 'parameters.stop: invalid type: string "x", expected a sequence')
    assert text(call("/", {"inputs": 5}), 422) == (
        prefix + "inputs: invalid type: integer `5`, expected a string")
    assert text(call("/generate", {"inputs": "x", "parameters": {"max_new_tokens": -1}}),
                422) == prefix + "parameters.max_new_tokens: invalid value: integer `-1`, " \
                                 "expected u32"
    assert text(call("/generate", raw=b"{oops"), 400).startswith(
        "Failed to parse the request body as JSON: key must be a string at line 1 column 2")
    assert text(call("/generate", {"inputs": "x"}, headers={}), 415) == (
        "Expected request with `Content-Type: application/json`")
    # the serverless API front is not axum: it does not insist on the content type
    assert body(call("/models/m", {"inputs": "x"}, headers={}))


def test_headers_report_tokens() -> None:
    reply = call("/generate", {"inputs": "Hello there", "parameters": {"max_new_tokens": 2}})
    assert isinstance(reply, JsonReply)
    assert reply.headers["x-prompt-tokens"] == "2"
    assert reply.headers["x-generated-tokens"] == "2"
    assert reply.headers["x-compute-type"] == "gpu+optimized"


def test_scripted_reply_replaces_the_generated_text() -> None:
    reply = body(call("/generate", {"inputs": "q"}, scripted_reply="Forty two."))
    assert reply == {"generated_text": "Forty two."}


def test_kind_replies() -> None:
    kind = huggingface.KIND
    assert kind.default_port == 8081
    headers = CIMultiDictProxy(CIMultiDict())
    hub_id = "meta-llama/Llama-2-7b-chat-hf"
    hub_call = Call("POST", f"/models/{hub_id}", {"model_id": hub_id}, {}, headers, b"", SETTINGS)
    loading = body(kind.loading(hub_call, 20.0), 503)
    assert loading == {"error": "Model meta-llama/Llama-2-7b-chat-hf is currently loading",
                       "estimated_time": 20.0}
    assert kind.stream_error("boom") == (
        b'data: {"error":"boom","error_type":"generation"}\n\n')
    assert body(kind.error(422, "bad"), 422) == {"error": "bad", "error_type": "validation"}
    api_call = Call("POST", "/models/x", {"model_id": "x"}, {}, headers, b"", SETTINGS)
    assert body(kind.unauthorized(api_call), 401) == {
        "error": "Authorization header is correct, but the token seems invalid"}
    tgi_call = Call("POST", "/generate", {}, {}, headers, b"", SETTINGS)
    assert text(kind.unauthorized(tgi_call), 401) == ""
    assert text(kind.not_found(tgi_call), 404) == ""
