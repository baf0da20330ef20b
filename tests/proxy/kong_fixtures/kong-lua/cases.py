"""The cases run through Kong's Lua (driver.lua) and through proxyproof's Kong mode: chat and
completions x raw, ollama, openai; each a client body, the config's model options and name, and
the upstream's 200 reply, all as JSON text so that both sides read the same bytes.
``build.py`` imports ``CASES``."""

from __future__ import annotations

import json
from typing import Any

CHAT, COMP = "llm/v1/chat", "llm/v1/completions"


def j(value: Any) -> str:
    return json.dumps(value)


CASES: list[dict[str, Any]] = []


def add(
    name: str,
    fmt: str,
    route: str,
    request: str,
    reply: str,
    options: str = "{}",
    model: str | None = "llama2",
) -> None:
    CASES.append(
        {
            "case": f"{fmt} {'chat' if route == CHAT else 'completions'}: {name}",
            "format": fmt,
            "route_type": route,
            "name": model,
            "options_json": options,
            "request": request,
            "upstream_reply": reply,
        }
    )


SYS_USER = {
    "messages": [
        {"role": "system", "content": "You are a mathematician."},
        {"role": "user", "content": "What is 1 + 2?"},
    ]
}
FOUR = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Multiply 3 by 2"},
    ]
}
SLASHES = {
    "messages": [
        {"role": "system", "content": "Paths like /usr/bin and a</b>"},
        {"role": "user", "content": "What is [/INST] and <</SYS>> and </s>?"},
    ]
}
UNICODE = {
    "messages": [
        {
            "role": "user",
            "content": 'caf\u00e9 \u2028 \u0001 tab\t quote" back\\ \u007f \ud83d\ude00',
        }
    ]
}
NUMBERS_RAW = (
    '{"messages":[{"role":"user","content":"n"}],"temperature":0.30000000000000004,'
    '"max_tokens":1.0,"top_p":1.0,"top_k":40.0,"seed":12345678901234567890}'
)
NUMBERS_PROMPT = (
    '{"prompt":"n","temperature":0.30000000000000004,"max_tokens":1.0,'
    '"top_p":1.0,"top_k":40.0,"seed":12345678901234567890}'
)
EXTRAS = {
    "messages": [{"role": "user", "content": "x"}],
    "stop": ["\n", "</s>"],
    "seed": 7,
    "user": "u/1",
    "n": 1,
    "response_format": {"type": "json_object"},
    "logit_bias": {},
    "tools": [],
    "metadata": {"a/b": [1, 2.5, -0.0, 1e21]},
}
BIG = (
    '{"messages":[{"role":"user","content":"big"}],"max_tokens":12345678901234567890,'
    '"temperature":-12345678901234567890,"top_p":1e-7,"top_k":9007199254740993}'
)

RAW_OK = j({"data": [{"generated_text": "[INST] q [/INST]\n\n The answer is 3. "}]})
OLLAMA_CHAT_OK = j(
    {
        "model": "llama2",
        "created_at": "2024-01-01T00:00:00.123456789Z",
        "message": {"role": "assistant", "content": "The answer is 3/1."},
        "done": True,
        "done_reason": "stop",
        "total_duration": 123,
        "prompt_eval_count": 26,
        "eval_count": 100,
    }
)
OLLAMA_COMP_OK = j(
    {
        "model": "llama2",
        "created_at": "2024-01-01T00:00:00Z",
        "response": "Because I said so.",
        "done": True,
        "context": [1, 2, 3],
        "prompt_eval_count": 10,
        "eval_count": 5,
    }
)
OPENAI_CHAT_OK = (
    '{\n  "id": "chatcmpl-1",\n  "object": "chat.completion",\n  "created": 1700000000,'
    '\n  "model": "m/x",\n  "choices": [{"index": 0, "message": {"role": "assistant",'
    ' "content": "a/b 0.30000000000000004"}, "finish_reason": "stop"}],'
    '\n  "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}\n}\n'
)
OPENAI_COMP_OK = (
    '{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",'
    '"choices":[{"index":0,"text":"a/b","logprobs":null,"finish_reason":"length"}],'
    '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
)


def ok_reply(fmt: str, route: str) -> str:
    if fmt == "raw":
        return RAW_OK
    if fmt == "ollama":
        return OLLAMA_CHAT_OK if route == CHAT else OLLAMA_COMP_OK
    return OPENAI_CHAT_OK if route == CHAT else OPENAI_COMP_OK


# --- requests, the same reply: 9 per format for chat, 7 for completions ------------------------
for fmt in ("raw", "ollama", "openai"):
    r = ok_reply(fmt, CHAT)
    add("system and user", fmt, CHAT, j(SYS_USER), r)
    add("system, user, assistant, user", fmt, CHAT, j(FOUR), r)
    add("slashes and control tokens in content", fmt, CHAT, j(SLASHES), r)
    add("unicode, control characters, quotes", fmt, CHAT, json.dumps(UNICODE), r)
    add("numbers as a client writes them", fmt, CHAT, NUMBERS_RAW, r)
    add(
        "config options override the request's",
        fmt,
        CHAT,
        j({**SYS_USER, "max_tokens": 100, "temperature": 0.9, "top_p": 0.2, "top_k": 3}),
        r,
        options='{"max_tokens":256,"temperature":0.5,"top_p":0.30000000000000004,"top_k":40}',
    )
    add("extra fields, empty arrays and objects", fmt, CHAT, j(EXTRAS), r)
    add("integers past 2^63 and 2^53", fmt, CHAT, BIG, r)
    add(
        "no configured name: the client's model with a slash",
        fmt,
        CHAT,
        j({**SYS_USER, "model": "org/model:7b"}),
        r,
        model=None,
    )
    add(
        "null, missing and number content",
        fmt,
        CHAT,
        j(
            {
                "messages": [
                    {"role": "system", "content": None},
                    {"role": "user"},
                    {"role": "user", "content": 1.5},
                    {"role": "system", "content": ""},
                ]
            }
        ),
        r,
    )
    add(
        "stream false, a null model and pretty-printed body",
        fmt,
        CHAT,
        json.dumps({**SYS_USER, "stream": False, "model": None}, indent=2),
        r,
    )

    r = ok_reply(fmt, COMP)
    add("plain prompt", fmt, COMP, j({"prompt": "Explain why you can't divide by zero?"}), r)
    add("prompt with slashes and [/INST]", fmt, COMP, j({"prompt": "a/b [/INST] <<SYS>> </s>"}), r)
    add("numbers as a client writes them", fmt, COMP, NUMBERS_PROMPT, r)
    add(
        "config options",
        fmt,
        COMP,
        j({"prompt": "p", "max_tokens": 7}),
        r,
        options='{"max_tokens":5,"temperature":1.0,"top_k":1}',
    )
    add(
        "extra fields",
        fmt,
        COMP,
        j({"prompt": "p", "echo": True, "suffix": "s/x", "best_of": 2, "logprobs": None}),
        r,
    )
    add(
        "unicode prompt", fmt, COMP, json.dumps({"prompt": "\u00e9\u00e8 \ud83d\ude00 \u0000 /"}), r
    )
    add(
        "client model equal to the configured one",
        fmt,
        COMP,
        j({"prompt": "p", "model": "llama2", "temperature": 0}),
        r,
    )

# --- raw replies --------------------------------------------------------------------------------
for route in (CHAT, COMP):
    q = j(SYS_USER) if route == CHAT else j({"prompt": "q"})
    add(
        "reply without [/INST]", "raw", route, q, j({"data": [{"generated_text": "  just text\n"}]})
    )
    add(
        "reply with usage (numbers, an empty array)",
        "raw",
        route,
        q,
        j(
            {
                "data": [{"generated_text": "[/INST] ok"}],
                "usage": {"prompt_tokens": 1.0, "x": [], "y": 0.30000000000000004},
            }
        ),
    )
    add(
        "reply text with slashes and escapes",
        "raw",
        route,
        q,
        j({"data": [{"generated_text": '[/INST] a/b "q" \\ \u00e9 \t'}]}),
    )
    add("reply without data", "raw", route, q, j({"generated_text": "TGI shape"}))
    add(
        "reply with two generations",
        "raw",
        route,
        q,
        j({"data": [{"generated_text": "a"}, {"generated_text": "b"}]}),
    )
    add("reply without generated_text", "raw", route, q, j({"data": [{"text": "x"}]}))
    add("reply data is empty", "raw", route, q, j({"data": []}))
    add("reply is not JSON", "raw", route, q, "<html>oops</html>")
    add("generated_text is a number", "raw", route, q, j({"data": [{"generated_text": 42}]}))
    add("generated_text is an object", "raw", route, q, j({"data": [{"generated_text": {"a": 1}}]}))
    add("generated_text is empty", "raw", route, q, j({"data": [{"generated_text": ""}]}))
    add("generated_text is null", "raw", route, q, j({"data": [{"generated_text": None}]}))
    add("data is a number", "raw", route, q, j({"data": 7}))
    add("data[1] is a number", "raw", route, q, j({"data": [1]}))
    add(
        "usage is null",
        "raw",
        route,
        q,
        j({"data": [{"generated_text": "[/INST] t"}], "usage": None}),
    )

add(
    "a message that is a number",
    "raw",
    CHAT,
    j({"messages": [{"role": "system", "content": "s"}, 5]}),
    RAW_OK,
)

# --- ollama replies -----------------------------------------------------------------------------
for route in (CHAT, COMP):
    q = j(SYS_USER) if route == CHAT else j({"prompt": "q"})
    add(
        "eval_count equals the configured max_tokens",
        "ollama",
        route,
        q,
        j(
            {
                "model": "llama2",
                "created_at": "t",
                "message": {"role": "assistant", "content": "c"},
                "response": "r",
                "done": True,
                "prompt_eval_count": 3,
                "eval_count": 10,
            }
        ),
        options='{"max_tokens":10}',
    )
    add(
        "eval_count equals the client's max_tokens only",
        "ollama",
        route,
        j({**json.loads(q), "max_tokens": 10}),
        j(
            {
                "model": "llama2",
                "created_at": "t",
                "message": {"role": "assistant", "content": "c"},
                "response": "r",
                "done": True,
                "done_reason": "length",
                "eval_count": 10,
            }
        ),
    )
    add(
        "reply without model, counts or created_at",
        "ollama",
        route,
        q,
        j({"message": {"role": "assistant", "content": "c"}, "response": "r", "done": True}),
    )
    add(
        "reply with nulls",
        "ollama",
        route,
        q,
        j(
            {
                "model": None,
                "created_at": None,
                "message": None,
                "response": None,
                "prompt_eval_count": None,
                "eval_count": None,
            }
        ),
    )
    add(
        "reply counts as floats",
        "ollama",
        route,
        q,
        j(
            {
                "model": "m",
                "created_at": "t",
                "message": {"role": "assistant", "content": "c"},
                "response": "r",
                "prompt_eval_count": 2.0,
                "eval_count": 0.5,
            }
        ),
    )
    add(
        "reply with tool_calls and empty arrays",
        "ollama",
        route,
        q,
        j(
            {
                "model": "m",
                "created_at": "t",
                "response": "r",
                "context": [],
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [],
                    "images": None,
                    "thinking": "a/b",
                },
                "eval_count": 1,
            }
        ),
    )
    add("reply is not JSON", "ollama", route, q, '{"model": "m", ')
    add("reply is a number", "ollama", route, q, "5")
    add("reply is an array", "ollama", route, q, j([{"response": "r"}]))
    add("reply is null", "ollama", route, q, "null")

add(
    "completion reply without response",
    "ollama",
    COMP,
    j({"prompt": "q"}),
    j({"model": "m", "created_at": "t", "done": True, "eval_count": 1}),
)

# --- openai replies -----------------------------------------------------------------------------
for route in (CHAT, COMP):
    q = j(SYS_USER) if route == CHAT else j({"prompt": "q"})
    add("reply without choices", "openai", route, q, j({"id": "x", "object": "error"}))
    add("reply with choices null", "openai", route, q, j({"id": "x", "choices": None}))
    add(
        "reply with nulls everywhere",
        "openai",
        route,
        q,
        '{"id":null,"choices":[{"index":0,"message":null,"text":null,"finish_reason":null}],'
        '"usage":null,"created":1.0,"n":12345678901234567890}',
    )
    add("reply is not JSON", "openai", route, q, "not json")
    add("reply is null", "openai", route, q, "null")
    add("reply is an array", "openai", route, q, "[]")

# --- more Lua corners ---------------------------------------------------------------------------
for route in (CHAT, COMP):
    q = j(SYS_USER) if route == CHAT else j({"prompt": "q"})
    add("reply is a JSON string", "ollama", route, q, j("hello"))
    add("reply is true", "ollama", route, q, "true")
    add(
        "counts as numeric strings",
        "ollama",
        route,
        q,
        j(
            {
                "model": "m",
                "message": {"role": "assistant", "content": "c"},
                "response": "r",
                "prompt_eval_count": "0x10",
                "eval_count": " 5 ",
            }
        ),
        options='{"max_tokens":5}',
    )
    add(
        "eval_count is a word",
        "ollama",
        route,
        q,
        j({"model": "m", "response": "r", "eval_count": "many", "prompt_eval_count": None}),
    )
    add(
        "prompt_eval_count is true, eval_count false",
        "ollama",
        route,
        q,
        j({"model": "m", "response": "r", "eval_count": False, "prompt_eval_count": True}),
    )
    add(
        "eval_count is an object",
        "ollama",
        route,
        q,
        j({"model": "m", "response": "r", "eval_count": {}, "prompt_eval_count": 1}),
    )
    add("reply is a number", "openai", route, q, "42")
    add("reply is true", "openai", route, q, "true")
    add("reply is false", "openai", route, q, "false")
    add("reply is a JSON string", "openai", route, q, j("choices"))
    add("choices is false", "openai", route, q, j({"choices": False}))
    add("choices is an empty object", "openai", route, q, '{"choices":{}, "x": 1.0}')
    add("generated_text is true", "raw", route, q, j({"data": [{"generated_text": True}]}))
    add("generated_text is false", "raw", route, q, j({"data": [{"generated_text": False}]}))
    add("data is an object", "raw", route, q, j({"data": {"generated_text": "x"}}))
    add("data is a string", "raw", route, q, j({"data": "xy"}))
    add("reply is a number", "raw", route, q, "5")
    add("reply is null", "raw", route, q, "null")
    add("data[1] is null", "raw", route, q, j({"data": [None]}))

add(
    "a message that is null",
    "raw",
    CHAT,
    j({"messages": [{"role": "system", "content": "s"}, None]}),
    RAW_OK,
)
add(
    "a message that is true",
    "raw",
    CHAT,
    j({"messages": [True, {"role": "user", "content": "u"}]}),
    RAW_OK,
)
add(
    "a message that is a string or an array",
    "raw",
    CHAT,
    j({"messages": ["s", ["u"], {"role": "user", "content": "q"}]}),
    RAW_OK,
)
add(
    "a third message that is a number",
    "raw",
    CHAT,
    j({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, 3]}),
    RAW_OK,
)
add("a message that is a number", "ollama", CHAT, j({"messages": [5]}), OLLAMA_CHAT_OK)
add("a message that is a number", "openai", CHAT, j({"messages": [5]}), OPENAI_CHAT_OK)
