"""The Ollama mock's handlers as pure functions: Call in, reply out (no sockets)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from proxyproof.mocks import generation, ollama
from proxyproof.mocks.base import NOT_JSON, Call, JsonReply, MockSettings, Reply, StreamReply

SETTINGS = MockSettings(models=("llama2", "mistral:7b"))


def call(path: str, body: Any = None, *, raw: bytes | None = None, method: str = "POST",
         scripted_reply: str | None = None) -> Reply:
    data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
    try:
        parsed = json.loads(data) if data.strip() else NOT_JSON
    except ValueError:
        parsed = NOT_JSON
    endpoint = next(e for e in ollama.KIND.endpoints if e.path == path and e.method == method)
    headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    return endpoint.handler(Call(method, path, {}, {}, headers, data, SETTINGS, parsed,
                              scripted_reply=scripted_reply))


def lines(reply: Reply) -> list[dict]:
    assert isinstance(reply, StreamReply)
    assert reply.content_type == "application/x-ndjson"
    for frame in reply.frames:
        assert frame.endswith(b"\n") and frame.count(b"\n") == 1  # one compact line each
    return [json.loads(frame) for frame in reply.frames]


def body(reply: Reply, status: int = 200) -> Any:
    assert isinstance(reply, JsonReply), reply
    assert reply.status == status, reply.body
    return reply.body


prompts = st.text(min_size=1, max_size=40).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(prompt=prompts, num_predict=st.integers(-1, 25), seed=st.none() | st.integers(0, 99))
def test_generate_stream_and_single_object_agree(prompt: str, num_predict: int,
                                                 seed: int | None) -> None:
    options: dict[str, Any] = {"num_predict": num_predict}
    if seed is not None:
        options["seed"] = seed
    request = {"model": "llama2", "prompt": prompt, "options": options}
    streamed = lines(call("/api/generate", request))
    single = body(call("/api/generate", {**request, "stream": False}))

    *chunks, final = streamed
    assert all(c["done"] is False for c in chunks) and final["done"] is True
    assert "".join(c["response"] for c in chunks) == single["response"]
    assert final["response"] == ""
    assert final["eval_count"] == single["eval_count"] == len(chunks)
    assert final["prompt_eval_count"] == generation.count_tokens(prompt)
    full = generation.reply_tokens("llama2", prompt, seed)
    cut = 0 < num_predict < len(full)
    assert single["done_reason"] == ("length" if cut else "stop")
    assert single["response"] == "".join(full[:num_predict] if cut else full)
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int)
    assert len(final["context"]) == generation.count_tokens(prompt) + final["eval_count"]


@settings(max_examples=30, deadline=None)
@given(contents=st.lists(prompts, min_size=1, max_size=4), num_predict=st.integers(-1, 12))
def test_chat_stream_and_single_object_agree(contents: list[str], num_predict: int) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": c}
                for i, c in enumerate(contents)]
    request = {"model": "mistral:7b", "messages": messages,
               "options": {"num_predict": num_predict}}
    *chunks, final = lines(call("/api/chat", request))
    single = body(call("/api/chat", {**request, "stream": False}))
    assert all(c["message"]["role"] == "assistant" for c in [*chunks, final])
    assert "".join(c["message"]["content"] for c in chunks) == single["message"]["content"]
    assert final["eval_count"] == len(chunks) == single["eval_count"]
    assert final["prompt_eval_count"] == generation.chat_prompt_tokens(messages)
    limit = num_predict if num_predict > 0 else None  # Ollama: 0 and -1 mean no limit
    expected = generation.generate("mistral:7b", generation.chat_key(messages),
                                   prompt_tokens=0, max_tokens=limit)
    assert single["message"]["content"] == expected.text
    assert single["done_reason"] == expected.finish_reason


def test_stop_option_ends_the_reply_before_the_sequence() -> None:
    text = "".join(generation.reply_tokens("llama2", "Why is the sky blue?"))
    stop_word = text.split()[2]
    reply = body(call("/api/generate", {"model": "llama2", "prompt": "Why is the sky blue?",
                                        "stream": False, "options": {"stop": [stop_word]}}))
    assert reply["response"] == text[: text.index(stop_word)]
    assert reply["done_reason"] == "stop"


def test_scripted_reply_replaces_the_generated_text() -> None:
    reply = call("/api/chat", {"model": "llama2", "messages": [{"role": "user", "content": "x"}]},
                 scripted_reply="Scripted answer here.")
    *chunks, final = lines(reply)
    assert [c["message"]["content"] for c in chunks] == ["Scripted", " answer", " here."]
    assert final["eval_count"] == 3


def test_raw_generate_has_no_context_and_rejects_a_system_prompt() -> None:
    reply = body(call("/api/generate", {"model": "llama2", "prompt": "[INST] hi [/INST]",
                                        "raw": True, "stream": False}))
    assert "context" not in reply
    refused = call("/api/generate", {"model": "llama2", "prompt": "x", "raw": True,
                                     "system": "be nice"})
    assert body(refused, 400) == {"error": "raw mode does not support template, system, or "
                                           "context"}


def test_load_and_unload() -> None:
    loaded = body(call("/api/generate", {"model": "llama2"}))
    assert (loaded["done"], loaded["done_reason"], loaded["response"]) == (True, "load", "")
    unloaded = body(call("/api/chat", {"model": "llama2", "messages": [], "keep_alive": 0}))
    assert unloaded["done_reason"] == "unload"
    assert unloaded["message"] == {"role": "assistant", "content": ""}
    assert body(call("/api/generate", {"model": "llama2", "keep_alive": "0s"}))[
        "done_reason"] == "unload"


def test_format_json_makes_the_reply_a_json_document() -> None:
    reply = body(call("/api/generate", {"model": "llama2", "prompt": "Give JSON",
                                        "format": "json", "stream": False}))
    assert isinstance(json.loads(reply["response"]), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}}}
    chat = body(call("/api/chat", {"model": "llama2", "format": schema, "stream": False,
                                   "messages": [{"role": "user", "content": "who?"}]}))
    document = json.loads(chat["message"]["content"])
    assert isinstance(document["name"], str) and isinstance(document["age"], int)


def test_request_errors_have_the_real_messages_and_codes() -> None:
    cases = [
        (call("/api/generate", raw=b""), 400, "missing request body"),
        (call("/api/chat", raw=b"{nope"), 400, "invalid character 'n' looking for beginning of "
                                              "object key string"),
        (call("/api/generate", raw=b'{"model": "llama2"'), 400, "unexpected EOF"),
        (call("/api/generate", [1]), 400, "json: cannot unmarshal array into Go value of type "
                                          "api.GenerateRequest"),
        (call("/api/generate", {"model": "llama2", "prompt": 7}), 400,
         "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type "
         "string"),
        (call("/api/chat", {"model": "llama2", "messages": [{"role": "user", "content": 1}]}),
         400, "json: cannot unmarshal number into Go struct field Message.messages.content "
              "of type string"),
        (call("/api/generate", {"model": "ghost", "prompt": "x"}), 404, "model 'ghost' not found"),
        (call("/api/generate", {"prompt": "x"}), 404, "model '' not found"),
        (call("/api/chat", {"messages": []}), 400, "model is required"),
        (call("/api/chat", {"model": "ghost", "messages": []}), 404,
         'model "ghost" not found, try pulling it first'),
        (call("/api/show", {}), 400, "model is required"),
        (call("/api/show", {"model": "ghost"}), 404, "model 'ghost' not found"),
        (call("/api/generate", {"model": "llama2", "prompt": "x", "think": True}), 400,
         '"llama2" does not support thinking'),
        (call("/api/generate", {"model": "llama2", "prompt": "x",
                                "options": {"num_predict": "ten"}}), 500,
         'option "num_predict" must be of type integer'),
        (call("/api/chat", {"model": "llama2", "messages": [{"role": "user", "content": "x"}],
                            "tools": [{"type": "function", "function": {"name": "f"}}]}), 400,
         "registry.ollama.ai/library/llama2:latest does not support tools"),
        (call("/api/generate", {"model": "llama2", "prompt": "x", "suffix": "y"}), 400,
         "registry.ollama.ai/library/llama2:latest does not support insert"),
        (call("/api/embed", {"model": "llama2", "input": [1]}), 400, "invalid input type"),
        (call("/api/embeddings", {"prompt": "x"}), 400, "model is required"),
    ]
    for reply, status, message in cases:
        assert body(reply, status) == {"error": message}
        assert reply.content_type.startswith("application/json")


def test_model_names_with_and_without_the_latest_tag_are_one_model() -> None:
    assert ollama.resolve_model(("llama2",), "llama2:latest") == "llama2"
    assert ollama.resolve_model(("llama2:latest",), "llama2") == "llama2:latest"
    assert ollama.resolve_model(("mistral:7b",), "mistral") is None
    reply = body(call("/api/generate", {"model": "llama2:latest", "prompt": "hi",
                                        "stream": False}))
    assert reply["model"] == "llama2:latest"  # the requested name is echoed


def test_embeddings_are_deterministic_unit_vectors() -> None:
    first = body(call("/api/embed", {"model": "llama2", "input": ["a", "b", "a"]}))
    vectors = first["embeddings"]
    assert vectors[0] == vectors[2] != vectors[1]
    assert all(abs(sum(v * v for v in vector) - 1) < 1e-5 for vector in vectors)
    assert len(vectors[0]) == ollama.EMBEDDING_SIZE
    assert first["prompt_eval_count"] == 3
    small = body(call("/api/embed", {"model": "llama2", "input": "a", "dimensions": 8}))
    assert len(small["embeddings"][0]) == 8
    assert body(call("/api/embed", {"model": "llama2", "input": ""}))["embeddings"] == []


def test_kind_errors_and_stream_error_frame() -> None:
    kind = ollama.KIND
    assert kind.default_port == 11434
    assert kind.stream_error("boom") == b'{"error":"boom"}\n'
    assert body(kind.error(429, "slow down"), 429) == {"error": "slow down"}
    anything = Call("POST", "/api/chat", {}, {}, {}, b"", SETTINGS)
    assert kind.loading(anything, 5.0).status == 503
