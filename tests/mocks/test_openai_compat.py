"""The OpenAI-compatible handlers as pure functions, dialect by dialect (no server needed)."""

from __future__ import annotations

import ast
import base64
import importlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxyproof.mocks as mocks_package
from proxyproof.fixtures import validate
from proxyproof.mocks import generation, llamacpp_v1, ollama_v1, tgi_v1
from proxyproof.mocks import openai as openai_mock
from proxyproof.mocks import openai_compat as oc
from proxyproof.mocks.base import BytesReply, Call, JsonReply, MockSettings, StreamReply
from proxyproof.mocks.openai_compat_dialect import Dialect

OPENAI, OLLAMA = openai_mock.DIALECT, ollama_v1.DIALECT
LLAMACPP, TGI = llamacpp_v1.DIALECT, tgi_v1.DIALECT
MESSAGES = [{"role": "user", "content": "What is 1+1?"}]
SETTINGS = MockSettings(models=("llama2", "mistral:7b"))


def call(body: Any, path: str = "/v1/chat/completions", raw: bytes | None = None) -> Call:
    data = raw if raw is not None else json.dumps(body).encode()
    try:
        parsed = json.loads(data)
    except ValueError:
        from proxyproof.mocks.base import NOT_JSON

        parsed = NOT_JSON
    return Call("POST", path, {}, {}, {}, data, SETTINGS, parsed)


def chunks(reply: Any) -> list[Any]:
    assert isinstance(reply, StreamReply)
    assert reply.frames[-1] == b"data: [DONE]\n\n"
    decoded = []
    for frame in reply.frames[:-1]:
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
        decoded.append(json.loads(frame[6:]))
    return decoded


def chat(dialect: Dialect, **request: Any) -> Any:
    return oc.chat_completions(dialect, call({"model": "llama2", "messages": MESSAGES, **request}))


def completion(dialect: Dialect, **request: Any) -> Any:
    body = {"model": "llama2", "prompt": "Tell me", **request}
    return oc.completions(dialect, call(body, "/v1/completions"))


def text_of(events: list[Any]) -> str:
    return "".join(
        (c["choices"][0]["delta"].get("content") or "") for c in events if c["choices"]
    )


ALL = [pytest.param(d, id=d.name) for d in (OPENAI, OLLAMA, LLAMACPP, TGI)]
# Each dialect's (chat reply, chat chunk, completion reply, completion chunk) schemas. OpenAI's
# replies require logprobs and refusal, which Ollama's /v1 omits: its whole replies have no schema
# of their own yet (the Ollama section of fixtures/oas.yaml).
SCHEMAS: dict[str, tuple[str | None, str, str | None, str | None]] = {
    "openai": ("OpenAIChatResponse", "OpenAIChatChunk", "OpenAICompletionResponse",
               "OpenAICompletionChunk"),
    "ollama": (None, "OpenAIChatChunk", None, "OpenAICompletionChunk"),
    "llamacpp": ("LlamaCppChatResponse", "LlamaCppChatChunk", "LlamaCppTextCompletionResponse",
                 "LlamaCppTextCompletionChunk"),
    # TGI's /v1/completions stream is its own (tgi_v1.completions; test_tgi_fidelity checks it).
    "tgi": ("TGIChatResponse", "TGIChatChunk", "TGICompletionResponse", None),
}


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize("limit", [None, 2])
def test_stream_and_whole_reply_agree(dialect: Dialect, limit: int | None) -> None:
    extra = {} if limit is None else {"max_tokens": limit}
    whole = chat(dialect, **extra).body
    events = chunks(chat(dialect, stream=True, stream_options={"include_usage": True}, **extra))
    assert text_of(events) == whole["choices"][0]["message"]["content"]
    finishes = [c["choices"][0]["finish_reason"] for c in events if c["choices"]]
    assert finishes[-1] == whole["choices"][0]["finish_reason"]
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert events[-1]["usage"] == whole["usage"]
    assert (events[-1]["choices"] == []) != dialect.stream.final_usage  # its own chunk, or not
    usage = whole["usage"]
    eos = dialect is TGI and finishes[-1] != "length"  # TGI counts the </s> that ended the text
    assert usage["completion_tokens"] == generation.count_tokens(text_of(events)) + eos
    names = SCHEMAS[dialect.name]
    for body in (whole, *events):
        if body is not whole:
            validate(names[1], body)
        elif names[0] is not None:
            validate(names[0], body)
    completion_whole = completion(dialect, **extra).body
    if names[2] is not None:
        validate(names[2], completion_whole)
    parts = chunks(completion(dialect, stream=True, **extra))
    assert "".join(c["choices"][0]["text"] for c in parts if c["choices"]) == (
        completion_whole["choices"][0]["text"]
    )
    for part in parts if names[3] is not None else ():
        validate(names[3], part)


def test_openai_shapes() -> None:
    body = chat(OPENAI).body
    assert body["choices"][0]["message"]["refusal"] is None
    assert body["choices"][0]["logprobs"] is None
    assert body["system_fingerprint"].startswith("fp_")
    events = chunks(chat(OPENAI, stream=True, stream_options={"include_usage": True}))
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-2]["choices"][0]["delta"] == {}
    assert all(e["usage"] is None for e in events[:-1])
    plain = chunks(chat(OPENAI, stream=True))
    assert all("usage" not in e for e in plain)
    assert completion(OPENAI).body["usage"]["completion_tokens"] <= 16


def test_ollama_shapes() -> None:
    body = chat(OLLAMA, model="llama2:latest").body
    assert body["system_fingerprint"] == "fp_ollama"
    assert body["id"].startswith("chatcmpl-") and body["id"][9:].isdigit()
    assert "logprobs" not in body["choices"][0] and "refusal" not in body["choices"][0]["message"]
    events = chunks(chat(OLLAMA, stream=True))
    assert all(e["choices"][0]["delta"]["role"] == "assistant" for e in events)
    assert events[-1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("usage" not in e for e in events)
    models = oc.list_models(OLLAMA, call(None, "/v1/models")).body
    assert [m["id"] for m in models["data"]] == ["llama2:latest", "mistral:7b"]
    assert {m["owned_by"] for m in models["data"]} == {"library"}
    missing = chat(OLLAMA, model="phi3")
    assert missing.status == 404
    assert missing.body["error"] == {
        # v0.11.4's ChatHandler words it; ChatWriter.writeError types every handler error
        "message": 'model "phi3" not found, try pulling it first', "type": "api_error",
        "param": None, "code": None,
    }
    assert chat(OLLAMA, messages=[]).body["error"]["message"] == "[] is too short - 'messages'"
    not_json = oc.chat_completions(OLLAMA, call(None, raw=b"hello"))
    assert (not_json.status, not_json.body["error"]["message"]) == (
        400, "invalid character 'h' looking for beginning of value"
    )
    assert oc.chat_completions(OLLAMA, call(None, raw=b"")).body["error"]["message"] == "EOF"


def test_llamacpp_shapes() -> None:
    body = chat(LLAMACPP, model="anything-at-all").body
    assert body["model"] == "llama2"  # llama.cpp reports the model it serves
    assert len(body["id"]) == len("chatcmpl-") + 32
    assert set(body["timings"]) >= {"prompt_n", "prompt_ms", "predicted_n", "predicted_ms"}
    events = chunks(chat(LLAMACPP, stream=True))
    # b4748: no role chunk (a partial result's n_decoded is never 0); the first delta is text
    assert list(events[0]["choices"][0]["delta"]) == ["content"]
    assert all("role" not in e["choices"][0]["delta"] for e in events)
    assert "timings" in events[-1] and all("timings" not in e for e in events[:-1])
    # usage rides on the finish chunk, unasked, and include_usage adds no chunk of its own
    assert events[-1]["choices"][0]["delta"] == {} and events[-1]["usage"]["total_tokens"] > 0
    asked = chunks(chat(LLAMACPP, stream=True, stream_options={"include_usage": True}))
    assert all(e["choices"] for e in asked) and len(asked) == len(events)
    final = chunks(completion(LLAMACPP, stream=True))[-1]
    assert final["usage"]["completion_tokens"] > 0 and final["choices"][0]["text"] == ""
    models = oc.list_models(LLAMACPP, call(None, "/v1/models")).body
    validate("LlamaCppModelList", models)
    assert [m["owned_by"] for m in models["data"]] == ["llamacpp"]
    paths = {e.path: e.public for e in oc.endpoints(LLAMACPP)}
    assert paths["/chat/completions"] is False and paths["/models"] is True
    # oaicompat_completion_params_parse throws outside the handler's try (c392e509): a 500.
    missing = oc.completions(LLAMACPP, call({"model": "m"}, "/v1/completions"))
    assert missing.status == 500
    assert missing.body["error"] == {
        "code": 500, "message": '"prompt" is required', "type": "server_error",
    }
    broken = oc.chat_completions(LLAMACPP, call(None, raw=b"nope"))
    assert broken.status == 500 and broken.body["error"]["type"] == "server_error"


def test_tgi_shapes() -> None:
    body = chat(TGI, model="ignored").body
    assert body["id"] == "" and body["model"] == "llama2"
    events = chunks(chat(TGI, stream=True, max_tokens=2))
    assert all(e["choices"][0]["delta"]["role"] == "assistant" for e in events)
    assert all(e["usage"] is None for e in events)
    assert [e["choices"][0]["finish_reason"] for e in events] == [None, "length"]
    ended = chunks(chat(TGI, stream=True))
    assert ended[-1]["choices"][0] == {
        "index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
        "finish_reason": "stop",
    }
    full = chat(TGI).body["choices"][0]["message"]["content"]
    stopped = chat(TGI, stop=[full.split()[1]]).body["choices"][0]
    assert stopped["finish_reason"] == "stop_sequence"
    string_stop = chat(TGI, stop="x")
    assert isinstance(string_stop, BytesReply) and string_stop.status == 422
    no_messages = oc.chat_completions(TGI, call({"model": "tgi"}))
    assert no_messages.status == 422 and b"missing field `messages`" in no_messages.body
    assert {e.path for e in oc.endpoints(TGI)} == {
        "/v1/chat/completions", "/v1/completions", "/v1/models",
    }
    assert oc.list_models(TGI, call(None, "/v1/models")).body["data"][0]["created"] == 0


@pytest.mark.parametrize("dialect", ALL)
def test_endpoints_carry_their_stream_error_frame(dialect: Dialect) -> None:
    for endpoint in oc.endpoints(dialect):
        assert endpoint.stream_error is not None
        frame = endpoint.stream_error("boom")
        assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
        event = json.loads(frame[6:])
        assert event["error"]["message"] == "boom"


def test_replies_are_a_function_of_the_request_content() -> None:
    request = {"model": "llama2", "messages": MESSAGES, "seed": 5}
    compact = oc.chat_completions(OPENAI, call(request))
    spaced = json.dumps(dict(reversed(request.items())), indent=2).encode()
    reordered = oc.chat_completions(OPENAI, call(None, raw=spaced))
    assert compact.body == reordered.body  # id and created included
    assert isinstance(compact.body["created"], int)
    other = chat(OPENAI, seed=1).body
    assert (other["id"], other["created"]) != (compact.body["id"], compact.body["created"])


def test_embeddings() -> None:
    reply = oc.embeddings(OPENAI, call({"model": "m", "input": "hi", "dimensions": 4,
                                           "encoding_format": "base64"}, "/v1/embeddings"))
    assert isinstance(reply, JsonReply)
    packed = base64.b64decode(reply.body["data"][0]["embedding"])
    assert list(struct.unpack("<4f", packed)) == generation.embedding_vector("hi", 4)
    assert reply.body["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    bad = oc.embeddings(OPENAI, call({"model": "m", "input": "x", "encoding_format": "hex"},
                                        "/v1/embeddings"))
    assert bad.status == 400 and bad.body["error"]["param"] == "encoding_format"
    assert generation.embedding_vector("a", 8) != generation.embedding_vector("b", 8)


def test_token_prompts_and_batches_of_one() -> None:
    by_ids = completion(OPENAI, prompt=[1, 2, 3], max_tokens=50).body
    assert by_ids["usage"]["prompt_tokens"] == 3
    single = completion(OPENAI, prompt=["Tell me"], max_tokens=50).body
    assert single["choices"][0]["text"] == completion(OPENAI, max_tokens=50).body[
        "choices"][0]["text"]
    assert completion(OLLAMA, prompt=["a", "b"]).status == 400


@settings(max_examples=60, deadline=None)
@given(
    dialect=st.sampled_from([OPENAI, OLLAMA, LLAMACPP, TGI]),
    content=st.text(max_size=40),
    seed=st.none() | st.integers(0, 2**31),
    limit=st.none() | st.integers(1, 25),
    stop=st.lists(st.sampled_from(["the", "two", ".", " a", "zebra"]), max_size=3),
    include_usage=st.booleans(),
)
def test_property_stream_and_whole_agree(
    dialect: Dialect, content: str, seed: int | None, limit: int | None, stop: list[str],
    include_usage: bool,
) -> None:
    request: dict[str, Any] = {
        "model": "llama2", "messages": [{"role": "user", "content": content}], "stop": stop,
    }
    if seed is not None:
        request["seed"] = seed
    if limit is not None:
        request["max_tokens"] = limit
    whole = oc.chat_completions(dialect, call(request)).body
    streamed = oc.chat_completions(
        dialect,
        call({**request, "stream": True, "stream_options": {"include_usage": include_usage}}),
    )
    events = chunks(streamed)
    text = whole["choices"][0]["message"]["content"]
    assert text_of(events) == text
    expected = generation.generate(
        "llama2", generation.chat_key(request["messages"]),
        prompt_tokens=generation.chat_prompt_tokens(request["messages"]), seed=seed,
        max_tokens=limit, stop=stop,
    )
    assert text == expected.text
    usage = whole["usage"]
    eos = dialect is TGI and expected.finish_reason != "length"  # TGI counts the closing </s>
    assert usage["completion_tokens"] - eos == generation.count_tokens(text) == (
        expected.completion_tokens)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    finish = whole["choices"][0]["finish_reason"]
    assert finish == ("length" if expected.finish_reason == "length" else (
        "stop_sequence" if expected.stopped_by and dialect is TGI else "stop"))
    assert not any(s and s in text for s in stop)
    # llama.cpp at b4748 puts usage on every stream's final chunk, asked for or not
    assert (events[-1].get("usage") is not None) == (include_usage or dialect.stream.final_usage)


def _imported_mocks_modules(path: Path) -> set[str]:
    """The ``proxyproof.mocks`` modules a source file imports, by their short names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:  # from . import a, b
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(MOCKS + "."):
            found.add(node.module[len(MOCKS) + 1 :].split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name[len(MOCKS) + 1 :].split(".")[0]
                for alias in node.names if alias.name.startswith(MOCKS + ".")
            )
    return found


MOCKS = "proxyproof.mocks"


def test_the_shared_layer_imports_no_server_module() -> None:
    folder = Path(mocks_package.__file__).parent
    shared = {path.stem: path for path in folder.glob("openai_compat*.py")}
    assert "openai_compat" in shared and "openai_compat_dialect" in shared
    allowed = {"base", "generation", "strict_json", *shared}
    for name, path in shared.items():
        assert _imported_mocks_modules(path) <= allowed, name
    # Each server's dialect lives with that server.
    for dialect, server in ((OPENAI, "openai"), (OLLAMA, "ollama_v1"),
                            (LLAMACPP, "llamacpp_v1"), (TGI, "tgi_v1")):
        assert importlib.import_module(f"{MOCKS}.{server}").DIALECT is dialect


def test_the_import_reader_sees_every_form(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from . import ollama, base\nfrom .tgi_request import error\n"
        "from proxyproof.mocks.llamacpp_request import JSON_UTF8\nimport proxyproof.mocks.openai\n"
    )
    assert _imported_mocks_modules(source) == {
        "ollama", "base", "tgi_request", "llamacpp_request", "openai",
    }
