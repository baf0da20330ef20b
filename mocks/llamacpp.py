"""The llama.cpp mock: ``llama-server``'s native routes, its OpenAI-compatible ``/v1/*``, and the
``/raw`` adapter for Kong's ``llama2_format: raw``.

Pinned to llama.cpp commit c392e509 (2025-02-20, build b4748; ``GET /props`` says so), the
version of the server README in ``../shared/reference/specs/``, and written from that era's
``examples/server/server.cpp`` and ``utils.hpp``: ``/completion`` and
``/completions`` take a prompt verbatim (string, token ids, mixed, or a list of prompts) and answer
one object (an array for several prompts), or SSE with one event per token and a final
``stop: true`` event — never ``[DONE]``. Request fields are read leniently and errors are
``{"error": {"code", "message", "type"}}`` (``llamacpp_request``); a body that is not JSON is the
real server's 500. Every response carries ``Server: llama.cpp``.

**Why ``/raw`` exists.** Kong's docs say a llama.cpp upstream for ``llama2_format: raw`` "should
be set to RAW mode", but stock llama.cpp has no such mode: Kong sends HF-style
``{"inputs", "parameters"}`` and reads ``data[0].generated_text``, which ``/completion`` neither
takes nor returns. A real deployment needs an adapter in front of llama.cpp; ``POST /raw`` is that
adapter. It echoes the prompt before the reply (Kong keeps what follows the last ``[/INST]``),
and when asked to stream it relays llama.cpp's own ``/completion`` events.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from typing import Any

from . import generation, llamacpp_v1, openai_compat
from . import llamacpp_request as fields
from .base import (
    NOT_JSON,
    Call,
    Endpoint,
    Handler,
    JsonReply,
    MockKind,
    Reply,
    StreamReply,
    sse_frame,
)
from .llamacpp_request import BUILD_INFO, JSON_UTF8, SERVER_HEADER, error, json_type, not_json
from .llamacpp_timings import timings

CONTEXT_SIZE = 4096
BOS_TOKEN = (1, "<s>")
EOS_TOKEN = (2, "</s>")

DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 4294967295,
    "temperature": 0.8,
    "dynatemp_range": 0.0,
    "dynatemp_exponent": 1.0,
    "top_k": 40,
    "top_p": 0.95,
    "min_p": 0.05,
    "xtc_probability": 0.0,
    "xtc_threshold": 0.1,
    "typical_p": 1.0,
    "repeat_last_n": 64,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "dry_multiplier": 0.0,
    "dry_base": 1.75,
    "dry_allowed_length": 2,
    "dry_penalty_last_n": -1,
    "dry_sequence_breakers": ["\n", ":", '"', "*"],
    "mirostat": 0,
    "mirostat_tau": 5.0,
    "mirostat_eta": 0.1,
    "stop": [],
    "max_tokens": -1,
    "n_predict": -1,
    "n_keep": 0,
    "n_discard": 0,
    "ignore_eos": False,
    "stream": False,
    "logit_bias": [],
    "n_probs": 0,
    "min_keep": 0,
    "grammar": "",
    "samplers": ["dry", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"],
    "speculative.n_max": 16,
    "speculative.n_min": 5,
    "speculative.p_min": 0.9,
    "timings_per_token": False,
    "post_sampling_probs": False,
    "lora": [],
}
_SAMPLING_OVERRIDES = ("temperature", "dynatemp_range", "dynatemp_exponent", "top_k", "top_p",
                       "min_p", "typical_p", "repeat_last_n", "repeat_penalty", "presence_penalty",
                       "frequency_penalty", "mirostat", "mirostat_tau", "mirostat_eta", "n_keep",
                       "n_probs", "min_keep")

LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
    "messages[0]['content'] | trim + '\\n<</SYS>>\\n\\n' %}{% set messages = messages[1:] %}"
    "{% else %}{% set system_message = '' %}{% endif %}{% for message in messages %}"
    "{% if loop.index0 == 0 %}{% set content = system_message + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)


# --- the kind's replies ------------------------------------------------------------------


def unauthorized(call: Call) -> Reply:
    return error(401, "Invalid API Key")


def not_found(call: Call) -> Reply:
    return error(404, "File Not Found")


def loading(call: Call, estimated_time: float) -> Reply:
    return error(503, "Loading model")


# --- prompts and tokens --------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    key: str  # the generation key: the string itself, or the compact JSON of a token list
    tokens: int
    text: str  # what the response's ``prompt`` field shows

    @classmethod
    def of_text(cls, text: str) -> Prompt:
        return cls(text, generation.count_tokens(text), f"{BOS_TOKEN[1]} {text}")


def _vocabulary_pieces() -> dict[int, str]:
    """Token id -> text for every piece the mock's generator can produce (and BOS/EOS)."""
    pieces: dict[int, str] = {}
    # Ids are hashes, so two pieces can share one (" predict." and "Every" do): the commoner
    # form wins.
    forms = (lambda w: " " + w, str.capitalize, lambda w: " " + w + ".",
             lambda w: w.capitalize() + ".")
    for form in forms:
        for word in generation.VOCABULARY:
            pieces.setdefault(generation.token_id(form(word)), form(word))
    pieces[BOS_TOKEN[0]], pieces[EOS_TOKEN[0]] = BOS_TOKEN[1], EOS_TOKEN[1]
    return pieces


_PIECES = _vocabulary_pieces()


def _piece(token: int) -> str:
    return _PIECES.get(token, "")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _single_prompt(value: Any) -> Prompt | None:
    if isinstance(value, str):
        return Prompt.of_text(value)
    if isinstance(value, list) and all(_is_token(v) or isinstance(v, str) for v in value):
        strings = [v for v in value if isinstance(v, str)]
        numbers = [v for v in value if _is_token(v)]
        if strings and not numbers:
            return None  # a list of strings is a list of prompts
        text = "".join(v if isinstance(v, str) else _piece(v) for v in value)
        count = len(numbers) + sum(generation.count_tokens(s) for s in strings)
        key = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return Prompt(key, count, text)
    return None


def read_prompts(value: Any) -> list[Prompt] | str:
    """``tokenize_input_prompts``: the prompts a ``prompt`` field holds, or the error message."""
    single = _single_prompt(value)
    if single is not None:
        return [single] if value != [] else '"prompt" must not be empty'
    if isinstance(value, list):
        prompts = []
        for item in value:
            prompt = _single_prompt(item)
            if prompt is None:
                return ('element of "prompt" must be a string, an list of tokens, or a list of '
                        "mixed strings & tokens")
            prompts.append(prompt)
        return prompts or '"prompt" must not be empty'
    return ('"prompt" must be a string, an list of tokens, a list of mixed strings & tokens, or '
            "a list of prompts")


# --- completion replies --------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    """One prompt's task: what was asked and what the mock generated."""

    index: int
    prompt: Prompt
    gen: generation.Generation
    settings: dict[str, Any]

    @property
    def stop_type(self) -> str:
        if self.gen.finish_reason == "length":
            return "limit"
        return "word" if self.gen.stopped_by else "eos"


def generation_settings(data: dict, *, n_predict: int, stop: list[str], stream: bool,
                        seed: int | None) -> dict[str, Any]:
    settings = dict(DEFAULT_PARAMS)
    for key in _SAMPLING_OVERRIDES:
        settings[key] = fields.number(data, key, settings[key])
    settings.update(
        seed=DEFAULT_PARAMS["seed"] if seed is None else seed,
        stop=stop,
        max_tokens=n_predict,
        n_predict=n_predict,
        stream=stream,
        ignore_eos=fields.flag(data, "ignore_eos"),
        timings_per_token=fields.flag(data, "timings_per_token"),
    )
    return settings


def final_object(task: Completion, model: str, *, streamed: bool,
                 return_tokens: bool = False) -> dict[str, Any]:
    """The last result of a task: the whole reply (non-stream) or the closing stats (stream)."""
    gen = task.gen
    with_tokens = return_tokens and not streamed
    return {
        "index": task.index,
        "content": "" if streamed else gen.text,
        "tokens": [generation.token_id(t) for t in gen.tokens] if with_tokens else [],
        "id_slot": 0,
        "stop": True,
        "model": model,
        "tokens_predicted": gen.completion_tokens,
        "tokens_evaluated": task.prompt.tokens,
        "generation_settings": task.settings,
        "prompt": task.prompt.text,
        "has_new_line": "\n" in gen.text,
        "truncated": False,
        "stop_type": task.stop_type,
        "stopping_word": gen.stopped_by,
        "tokens_cached": task.prompt.tokens + gen.completion_tokens,
        "timings": timings(task.prompt.tokens, gen.completion_tokens),
    }


def completion_frames(task: Completion, model: str) -> list[bytes]:
    """``/completion``'s SSE: one event per token, then the final ``stop: true`` event. A partial
    event carries ``timings`` only with ``timings_per_token``."""
    per_token = bool(task.settings.get("timings_per_token"))
    frames = []
    for position, token in enumerate(task.gen.tokens, start=1):
        event: dict[str, Any] = {
            "index": task.index,
            "content": token,
            "tokens": [generation.token_id(token)],
            "stop": False,
            "id_slot": 0,
            "tokens_predicted": position,
            "tokens_evaluated": task.prompt.tokens,
        }
        if per_token:
            event["timings"] = timings(task.prompt.tokens, position)
        frames.append(sse_frame(event))
    frames.append(sse_frame(final_object(task, model, streamed=True)))
    return frames


def _tasks(call: Call, data: dict, prompts: list[Prompt], *, n_predict: int, stream: bool,
           stop: list[str]) -> list[Completion]:
    seed = fields.integer(data, "seed", None)
    if seed is not None and seed in (-1, DEFAULT_PARAMS["seed"]):
        seed = None  # "random": the mock's reply is then the seedless one
    settings = generation_settings(data, n_predict=n_predict, stop=stop, stream=stream, seed=seed)
    model = call.settings.models[0]
    return [
        Completion(
            index,
            prompt,
            call.generate(model, prompt.key, prompt_tokens=prompt.tokens, seed=seed,
                          max_tokens=n_predict, stop=stop),
            settings,
        )
        for index, prompt in enumerate(prompts)
    ]


def _json(body: Any) -> Reply:
    return JsonReply(200, body, content_type=JSON_UTF8)


def _completion(call: Call) -> Reply:
    if call.json is NOT_JSON:
        return not_json(call.body)
    data = call.json
    if not isinstance(data, dict):
        return error(400, f"[json.exception.type_error.304] cannot use at() with "
                          f"{json_type(data)}")
    if "prompt" not in data:
        return error(400, "[json.exception.out_of_range.403] key 'prompt' not found")
    prompts = read_prompts(data["prompt"])
    if isinstance(prompts, str):
        return error(400, prompts)
    stream = fields.flag(data, "stream")
    tasks = _tasks(call, data, prompts, n_predict=fields.n_predict(data), stream=stream,
                   stop=fields.stop_words(data))
    model = call.settings.models[0]
    if stream:
        return StreamReply([frame for task in tasks for frame in completion_frames(task, model)])
    return_tokens = fields.flag(data, "return_tokens")
    results = [final_object(task, model, streamed=False, return_tokens=return_tokens)
               for task in tasks]
    return _json(results[0] if len(results) == 1 else results)


# --- Kong's raw format (an adapter in front of llama.cpp) ----------------------------------


def _raw(call: Call) -> Reply:
    if call.json is NOT_JSON:
        return not_json(call.body)
    data = call.json
    if not isinstance(data, dict) or "inputs" not in data:
        return error(400, '"inputs" must be provided')
    inputs = data["inputs"]
    if not isinstance(inputs, str):
        return error(400, '"inputs" must be a string')
    parameters = data.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        return error(400, '"parameters" must be an object')
    max_new_tokens = fields.integer(parameters, "max_new_tokens", None)
    stream = fields.flag(parameters, "stream") or fields.flag(data, "stream")
    (task,) = _tasks(call, parameters, [Prompt.of_text(inputs)],
                     n_predict=-1 if max_new_tokens is None else max_new_tokens, stream=stream,
                     stop=fields.stop_words(parameters))
    if stream:
        return StreamReply(completion_frames(task, call.settings.models[0]))
    return _json({"data": [{"generated_text": inputs + task.gen.text}]})


# --- utility endpoints ---------------------------------------------------------------------


def _health(call: Call) -> Reply:
    return _json({"status": "ok"})


def _props(call: Call) -> Reply:
    """``handle_props`` at c392e509: exactly these keys (``chat_template_tool_use`` only with
    ``--jinja``; ``model_alias``, ``modalities`` and ``is_sleeping`` came later)."""
    model = call.settings.models[0]
    return _json({
        "default_generation_settings": {
            "id": 0,
            "id_task": -1,
            "n_ctx": CONTEXT_SIZE,
            "speculative": False,
            "is_processing": False,
            "params": dict(DEFAULT_PARAMS),
            "prompt": "",
            "next_token": {"has_next_token": True, "has_new_line": False, "n_remain": -1,
                           "n_decoded": 0, "stopping_word": ""},
        },
        "total_slots": 1,
        "model_path": f"models/{model}.gguf",
        "chat_template": LLAMA2_CHAT_TEMPLATE,
        "bos_token": BOS_TOKEN[1],
        "eos_token": EOS_TOKEN[1],
        "build_info": BUILD_INFO,
    })


def _props_update(call: Call) -> Reply:
    return error(501, "This server does not support changing global properties. Start it with "
                      "`--props`")


def _tokenize(call: Call) -> Reply:
    if call.json is NOT_JSON:
        return not_json(call.body)
    data = call.json
    if not isinstance(data, dict) or "content" not in data:
        return _json({"tokens": []})
    content = data["content"]
    if not isinstance(content, str):
        return error(500, f"[json.exception.type_error.302] type must be string, but is "
                          f"{json_type(content)}")
    pieces = generation.tokenize(content)
    ids = [generation.token_id(piece) for piece in pieces]
    if fields.flag(data, "add_special"):
        pieces, ids = [BOS_TOKEN[1], *pieces], [BOS_TOKEN[0], *ids]
    if fields.flag(data, "with_pieces"):
        return _json({"tokens": [{"id": i, "piece": p} for i, p in zip(ids, pieces, strict=True)]})
    return _json({"tokens": ids})


def _detokenize(call: Call) -> Reply:
    if call.json is NOT_JSON:
        return not_json(call.body)
    tokens = call.json.get("tokens") if isinstance(call.json, dict) else None
    if tokens is None:
        return _json({"content": ""})
    if not isinstance(tokens, list):
        return error(500, "[json.exception.type_error.302] type must be array, but is "
                          f"{json_type(tokens)}")
    wrong = [t for t in tokens if not _is_token(t)]
    if wrong:
        return error(500, "[json.exception.type_error.302] type must be number, but is "
                          f"{json_type(wrong[0])}")
    return _json({"content": "".join(_piece(t) for t in tokens)})


# --- the kind ------------------------------------------------------------------------------


def _with_server_header(handler: Handler) -> Handler:
    """llama.cpp's HTTP layer stamps every response, the OpenAI-compatible ones included. The
    handler sees the body as nlohmann reads it (``llamacpp_request.body_json``)."""

    @functools.wraps(handler)
    def stamped(call: Call) -> Reply:
        call.json = fields.body_json(call.body, call.json)
        reply = handler(call)
        reply.headers.setdefault("Server", SERVER_HEADER["Server"])
        return reply

    return stamped


NATIVE_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", _health, public=True),
    Endpoint("GET", "/v1/health", _health, public=True),
    Endpoint("GET", "/props", _props),
    Endpoint("POST", "/props", _props_update),
    Endpoint("POST", "/completion", _completion),
    Endpoint("POST", "/completions", _completion),
    Endpoint("POST", "/tokenize", _tokenize),
    Endpoint("POST", "/detokenize", _detokenize),
    Endpoint("POST", "/raw", _raw),
)

KIND = MockKind(
    name="llamacpp",
    default_port=8080,
    endpoints=tuple(
        replace(endpoint, handler=_with_server_header(endpoint.handler))
        for endpoint in NATIVE_ENDPOINTS + openai_compat.endpoints(llamacpp_v1.DIALECT)
    ),
    unauthorized=unauthorized,
    not_found=not_found,
    # httplib routes by method and path: a wrong method is an unmatched route, and the error
    # handler answers every 404 with "File Not Found" (server.cpp set_error_handler).
    method_not_allowed=not_found,
    error=error,
    loading=loading,
    stream_error=llamacpp_v1.DIALECT.stream_error,
    description="llama.cpp llama-server: /completion (SSE), /health, /props, /tokenize, "
    "/detokenize, /v1/*, and /raw (Kong's llama2_format=raw adapter)",
    x_api_key=True,
    refuses_content_encoding=True,
)
