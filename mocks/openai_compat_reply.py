"""Building an OpenAI-compatible reply: the whole body, or the chunks of a stream, as the
dialect shapes them.

A reply is a function of the request's content: the ``id`` and ``created`` derive from a digest
of its canonically encoded JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import generation
from .base import Call, JsonReply, Reply, StreamReply, sse_frame
from .openai_compat_dialect import MODEL_CREATED, Dialect
from .openai_compat_request import Options

CREATED_SPAN = 31_536_000  # replies are "created" within a year after MODEL_CREATED
DONE_FRAME = sse_frame("[DONE]")
# The request digest's encoding: key order and spacing must not change a reply.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)



@dataclass(frozen=True)
class Context:
    id: str
    created: int
    model: str
    include_usage: bool


def reply_context(dialect: Dialect, call: Call, options: Options, *, chat: bool) -> Context:
    digest = hashlib.blake2b(_CANONICAL.encode(call.json).encode(), digest_size=24).digest()
    make_id = dialect.replies.chat_id if chat else dialect.replies.completion_id
    created = MODEL_CREATED + int.from_bytes(digest[-4:], "big") % CREATED_SPAN
    return Context(make_id(digest), created, options.model, options.include_usage)


def _finish_reason(dialect: Dialect, gen: generation.Generation) -> str:
    return dialect.replies.stop_sequence_finish if gen.stopped_by else gen.finish_reason


def _usage(dialect: Dialect, gens: Sequence[generation.Generation]) -> dict[str, Any]:
    """One request's usage: the prompt once, the completion tokens of every choice."""
    prompt = gens[0].prompt_tokens
    completion = sum(dialect.replies.completion_tokens(gen) for gen in gens)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if dialect.replies.usage_details:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return usage


def _timings(dialect: Dialect, gens: Sequence[generation.Generation]) -> dict[str, float]:
    assert dialect.replies.timings is not None
    return dialect.replies.timings(
        gens[0].prompt_tokens, sum(gen.completion_tokens for gen in gens)
    )


def _envelope(dialect: Dialect, ctx: Context, object_name: str) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "id": ctx.id,
        "object": object_name,
        "created": ctx.created,
        "model": ctx.model,
    }
    if dialect.replies.system_fingerprint is not None:
        envelope["system_fingerprint"] = dialect.replies.system_fingerprint
    return envelope


def whole(
    dialect: Dialect, ctx: Context, gens: Sequence[generation.Generation], object_name: str,
    choices: Sequence[dict[str, Any]], *, logprobs: bool, extras: Mapping[str, Any],
) -> JsonReply:
    """A non-streamed reply with one choice per generation (``n``)."""
    for gen, choice in zip(gens, choices, strict=True):
        if logprobs:
            choice["logprobs"] = None
        choice["finish_reason"] = _finish_reason(dialect, gen)
    body = _envelope(dialect, ctx, object_name)
    body["choices"] = list(choices)
    body["usage"] = _usage(dialect, gens)
    body.update(extras)
    if dialect.replies.timings is not None:
        body["timings"] = _timings(dialect, gens)
    return JsonReply(200, body, content_type=dialect.replies.content_type)


class _ChunkMaker:
    """Builds the chunks of one stream: the envelope, and ``usage: null`` where due."""

    def __init__(self, dialect: Dialect, ctx: Context, object_name: str, logprobs: bool) -> None:
        self.envelope = _envelope(dialect, ctx, object_name)
        self.logprobs = logprobs
        self.usage_null = dialect.stream.usage_null == "always" or (
            dialect.stream.usage_null == "requested" and ctx.include_usage
        )

    def choice_chunk(self, choice: dict[str, Any], finish: str | None) -> dict[str, Any]:
        if self.logprobs:
            choice["logprobs"] = None
        choice["finish_reason"] = finish
        chunk = {**self.envelope, "choices": [choice]}
        if self.usage_null:
            chunk["usage"] = None
        return chunk

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        return {**self.envelope, "choices": [], "usage": usage}


def _choice_chunks(
    dialect: Dialect, gen: generation.Generation, maker: _ChunkMaker,
    piece: Callable[[str], dict[str, Any]], finish_choice: dict[str, Any],
) -> list[dict[str, Any]]:
    """One chunk per token (its choice is ``piece(token)``), and the finish: on a last chunk of
    its own (``finish_choice``), or on the last token's chunk where TGI puts a finish that is not
    a natural end."""
    finish = _finish_reason(dialect, gen)
    rides_last = dialect.stream.finish_on_last_token and finish != "stop" and bool(gen.tokens)
    last = len(gen.tokens) - 1
    chunks = [
        maker.choice_chunk(piece(token), finish if rides_last and position == last else None)
        for position, token in enumerate(gen.tokens)
    ]
    if not rides_last:
        chunks.append(maker.choice_chunk(finish_choice, finish))
    return chunks


def _stream(
    dialect: Dialect, chunks: list[dict[str, Any]], gens: Sequence[generation.Generation]
) -> Reply:
    if dialect.replies.timings is not None:
        chunks[-1]["timings"] = _timings(dialect, gens)
    frames = [sse_frame(chunk) for chunk in chunks]
    frames.append(DONE_FRAME)
    return StreamReply(frames, content_type=dialect.stream.content_type)


def chat_stream(
    dialect: Dialect, ctx: Context, gens: Sequence[generation.Generation]
) -> Reply:
    """Each choice's chunks in turn (its role chunk, one per token, its finish)."""
    maker = _ChunkMaker(dialect, ctx, "chat.completion.chunk", dialect.replies.chat_logprobs)
    every_delta = {"role": "assistant"} if dialect.stream.role_on_every_delta else {}
    chunks = []
    for index, gen in enumerate(gens):
        if dialect.stream.role_chunk_content is not False:
            role = {"role": "assistant", "content": dialect.stream.role_chunk_content}
            chunks.append(maker.choice_chunk({"index": index, "delta": role}, None))
        chunks += _choice_chunks(
            dialect, gen, maker,
            lambda token, i=index: {"index": i, "delta": {**every_delta, "content": token}},
            {"index": index, "delta": dict(dialect.stream.finish_delta)},
        )
    _add_usage(dialect, ctx, chunks, gens, maker)
    return _stream(dialect, chunks, gens)


def _add_usage(
    dialect: Dialect, ctx: Context, chunks: list[dict[str, Any]],
    gens: Sequence[generation.Generation], maker: _ChunkMaker,
) -> None:
    if dialect.stream.final_usage:
        chunks[-1]["usage"] = _usage(dialect, gens)
    elif ctx.include_usage:
        chunks.append(maker.usage_chunk(_usage(dialect, gens)))


def completion_stream(
    dialect: Dialect, ctx: Context, gens: Sequence[generation.Generation]
) -> Reply:
    maker = _ChunkMaker(dialect, ctx, "text_completion", dialect.replies.completion_logprobs)
    chunks = []
    for index, gen in enumerate(gens):
        chunks += _choice_chunks(
            dialect, gen, maker, lambda token, i=index: {"text": token, "index": i},
            {"text": "", "index": index},
        )
    _add_usage(dialect, ctx, chunks, gens, maker)
    return _stream(dialect, chunks, gens)
