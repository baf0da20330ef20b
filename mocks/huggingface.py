"""The HuggingFace mock: the serverless Inference API and a text-generation-inference server.

One server answers both families:

- Inference API: ``POST /models/{model_id}`` (any id) answers ``[{"generated_text": ...}]`` with
  the prompt echoed unless ``return_full_text`` is false, or TGI's SSE when ``stream`` is true;
  errors are flat ``{"error": "..."}`` bodies; ``POST /models/{model_id}/v1/chat/completions`` is
  the Messages API of the TGI hosting that model;
- TGI 3.3.6 (``GET /info`` names the version and the tag's commit): ``POST /`` (compat: an
  array, or SSE), ``/generate`` (an object), ``/generate_stream``
  (SSE without ``[DONE]``), ``GET /info``, ``/health``, and the Messages API under ``/v1/*``.

Token events follow TGI: one per generated token. A reply that ends before the token limit
(naturally, or at a stop sequence) closes with the model's ``</s>`` token, marked ``special``: it
counts in ``generated_tokens`` and in the stream, but is not part of ``generated_text``; so the
texts of the non-special tokens concatenate to the reply.
"""

from __future__ import annotations

import functools
from typing import Any

from . import generation, tgi_request, tgi_v1
from .base import BytesReply, Call, Endpoint, JsonReply, MockKind, Reply, StreamReply, sse_frame
from .tgi_request import GenerateRequest, error

TGI_VERSION = tgi_v1.VERSION
COMPUTE_TYPE = "gpu+optimized"
EOS_TOKEN = tgi_v1.EOS_TOKEN

# Deterministic stand-ins for TGI's timing headers (milliseconds).
VALIDATION_MS = 1
QUEUE_MS = 2
MS_PER_TOKEN = 20


def _finish_reason(gen: generation.Generation) -> str:
    if gen.finish_reason == "length":
        return "length"
    return "stop_sequence" if gen.stopped_by else "eos_token"


def _logprob(token_id: int) -> float:
    return -round((token_id % 997 + 1) / 1000, 4)


def _token(token_id: int, text: str, *, special: bool = False) -> dict[str, Any]:
    return {"id": token_id, "text": text, "logprob": _logprob(token_id), "special": special}


def _token_events(gen: generation.Generation) -> list[dict[str, Any]]:
    """Every token TGI reports for this generation, including the closing ``</s>``."""
    tokens = [_token(generation.token_id(text), text) for text in gen.tokens]
    if gen.finish_reason != "length":
        tokens.append(_token(*EOS_TOKEN, special=True))
    return tokens


def _generate(call: Call, model: str, request: GenerateRequest) -> generation.Generation:
    return call.generate(
        model,
        request.inputs,
        prompt_tokens=generation.count_tokens(request.inputs),
        seed=request.parameters.get("seed"),
        max_tokens=request.parameters.get("max_new_tokens"),
        stop=request.stop,
    )


def _full_text(request: GenerateRequest, gen: generation.Generation, full_default: bool) -> str:
    echo = request.param("return_full_text", full_default)
    return request.inputs + gen.text if echo else gen.text


def _prefill(request: GenerateRequest) -> list[dict[str, Any]]:
    """The prompt's tokens; the first has no logprob (nothing came before it)."""
    prefill = []
    for index, piece in enumerate(generation.tokenize(request.inputs)):
        token_id = generation.token_id(piece)
        logprob = None if index == 0 else _logprob(token_id)
        prefill.append({"id": token_id, "text": piece, "logprob": logprob})
    return prefill


def generate_response(
    request: GenerateRequest, gen: generation.Generation, *, full_default: bool
) -> dict[str, Any]:
    """TGI's ``GenerateResponse`` (``details`` only when the request asked for it)."""
    body: dict[str, Any] = {"generated_text": _full_text(request, gen, full_default)}
    if request.param("details", False):
        tokens = _token_events(gen)
        body["details"] = {
            "finish_reason": _finish_reason(gen),
            "generated_tokens": len(tokens),
            "seed": request.parameters.get("seed"),
            "prefill": _prefill(request) if request.param("decoder_input_details", False) else [],
            "tokens": tokens,
        }
    return body


def stream_frames(
    request: GenerateRequest, gen: generation.Generation, *, full_default: bool
) -> list[bytes]:
    """TGI's ``/generate_stream`` events: one per token, the last one with the summary."""
    tokens = _token_events(gen)
    frames = []
    for index, token in enumerate(tokens, start=1):
        event: dict[str, Any] = {"index": index, "token": token, "generated_text": None,
                                 "details": None}
        if index == len(tokens):
            event["generated_text"] = _full_text(request, gen, full_default)
            if request.param("details", False):
                event["details"] = {
                    "finish_reason": _finish_reason(gen),
                    "generated_tokens": len(tokens),
                    "seed": request.parameters.get("seed"),
                    "input_length": gen.prompt_tokens,
                }
        frames.append(sse_frame(event))
    return frames


def _timing_headers(request: GenerateRequest, gen: generation.Generation) -> dict[str, str]:
    generated = tgi_request.generated_tokens(gen)
    inference_ms = generated * MS_PER_TOKEN
    total_ms = VALIDATION_MS + QUEUE_MS + inference_ms
    return {
        "x-compute-type": COMPUTE_TYPE,
        "x-compute-time": f"{total_ms / 1000:.3f}",
        "x-compute-characters": str(len(request.inputs)),
        "x-total-time": str(total_ms),
        "x-validation-time": str(VALIDATION_MS),
        "x-queue-time": str(QUEUE_MS),
        "x-inference-time": str(inference_ms),
        "x-time-per-token": str(MS_PER_TOKEN),
        "x-prompt-tokens": str(gen.prompt_tokens),
        "x-generated-tokens": str(generated),
    }


_STREAM_HEADERS = {"x-compute-type": COMPUTE_TYPE, "x-accel-buffering": "no"}


def validation_reply(message: str, *, streaming: bool) -> Reply:
    """A validation failure: a 422, or (streaming) an error event on a 200 stream."""
    body = {"error": f"Input validation error: {message}", "error_type": "validation"}
    if streaming:
        return StreamReply([sse_frame(body)], headers=dict(_STREAM_HEADERS))
    return JsonReply(422, body)


def _generate_route(call: Call, *, compat: bool, stream: bool = False) -> Reply:
    """A generate route: ``/generate``, ``/generate_stream`` (``stream``), or with ``compat`` the
    ``CompatGenerateRequest`` of ``POST /`` and of the Inference API's ``POST /models/{id}``.

    A compat request streams when its body asks, answers an array, and echoes the prompt by
    default (the served model's pipeline tag is text-generation). The Inference API generates
    for the model its path names and, being HF's front rather than axum, does not insist on the
    content type (its ``options`` and ``x-use-cache`` / ``x-wait-for-model`` headers change
    nothing here).
    """
    path_model = call.match_info.get("model_id")
    request = tgi_request.decode(call, compat=compat, require_content_type=path_model is None)
    if isinstance(request, BytesReply):
        return request
    stream = stream or request.stream
    problem = tgi_request.validation_error(request, streaming=stream)
    if problem:
        return validation_reply(problem, streaming=stream)
    gen = _generate(call, path_model or call.settings.models[0], request)
    if stream:
        frames = stream_frames(request, gen, full_default=compat)
        return StreamReply(frames, headers=dict(_STREAM_HEADERS))
    body = generate_response(request, gen, full_default=compat)
    return JsonReply(200, [body] if compat else body, headers=_timing_headers(request, gen))


def info_body(model_id: str) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128,
        "max_best_of": tgi_request.MAX_BEST_OF,
        "max_stop_sequences": tgi_request.MAX_STOP_SEQUENCES,
        "max_input_tokens": tgi_request.MAX_INPUT_TOKENS,
        "max_total_tokens": tgi_request.MAX_TOTAL_TOKENS,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": TGI_VERSION,
        "sha": tgi_v1.SHA,
        "docker_label": tgi_v1.DOCKER_LABEL,
    }


def _info(call: Call) -> Reply:
    return JsonReply(200, info_body(call.settings.models[0]))


def _health(call: Call) -> Reply:
    return BytesReply(200, b"")


# --- the kind ------------------------------------------------------------------------------


def unauthorized(call: Call) -> Reply:
    if call.path.startswith("/models/"):
        return JsonReply(401, {"error": "Authorization header is correct, but the token seems "
                                        "invalid"})
    return BytesReply(401, b"")  # TGI's api-key middleware answers a bare status


def not_found(call: Call) -> Reply:
    return BytesReply(404, b"", content_type=None)  # axum's fallback: no body, no type


def method_not_allowed(call: Call) -> Reply:
    return BytesReply(405, b"", content_type=None)  # axum's MethodRouter: status and Allow only


def loading(call: Call, estimated_time: float) -> Reply:
    """The Inference API's 503 while the model loads: the model its path names, else (TGI's
    own routes) the model the server serves."""
    model = call.match_info.get("model_id") or call.settings.models[0]
    return JsonReply(503, {"error": f"Model {model} is currently loading",
                           "estimated_time": float(estimated_time)})


def stream_error(message: str) -> bytes:
    return sse_frame({"error": message, "error_type": "generation"})


_compat_generate = functools.partial(_generate_route, compat=True)
_generate_once = functools.partial(_generate_route, compat=False)
_generate_stream = functools.partial(_generate_route, compat=False, stream=True)

NATIVE_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/models/{model_id:.+}", _compat_generate),
    Endpoint("POST", "/", _compat_generate),
    Endpoint("GET", "/", _health, public=True),
    Endpoint("POST", "/generate", _generate_once),
    Endpoint("POST", "/generate_stream", _generate_stream),
    Endpoint("GET", "/info", _info, public=True),
    Endpoint("GET", "/health", _health, public=True),
    Endpoint("GET", "/ping", _health, public=True),
)

KIND = MockKind(
    name="huggingface",
    default_port=8081,
    endpoints=tgi_v1.hosted_endpoints() + NATIVE_ENDPOINTS + tgi_v1.endpoints(),
    unauthorized=unauthorized,
    not_found=not_found,
    method_not_allowed=method_not_allowed,
    error=error,
    loading=loading,
    stream_error=stream_error,
    description="HuggingFace Inference API (/models/{id}) and TGI (/, /generate, "
    "/generate_stream, /info, /health, /v1/*)",
)
