"""The GGUF file the Ollama mock claims to hold, as ``/api/show`` describes it: Llama 2 7B at
Q4_0 (what ``ollama pull llama2`` fetches). v0.11.4's ShowHandler reports the file's key-value
metadata as ``model_info`` (``general.name`` and the chat template removed; arrays longer than
five emptied unless ``verbose``) and every tensor's name, type and shape as ``tensors``,
verbose or not."""

from __future__ import annotations

from typing import Any

from .ollama_request import EMBEDDING_SIZE as EMBEDDING_LENGTH

CONTEXT_LENGTH = 4096
FEED_FORWARD_LENGTH = 11008
BLOCKS = 32
VOCABULARY = 32000


def model_info() -> dict[str, Any]:
    # The tokenizer's 32 000-entry arrays are emptied as without ``verbose``: the mock has no
    # real vocabulary to show (fixtures/ERRATA.md, Ollama).
    return {
        "general.architecture": "llama",
        "general.file_type": 2,
        "general.parameter_count": 6_738_415_616,
        "general.quantization_version": 2,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 32,
        "llama.attention.layer_norm_rms_epsilon": 0.00001,
        "llama.block_count": BLOCKS,
        "llama.context_length": CONTEXT_LENGTH,
        "llama.embedding_length": EMBEDDING_LENGTH,
        "llama.feed_forward_length": FEED_FORWARD_LENGTH,
        "llama.rope.dimension_count": 128,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.merges": [],
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.scores": [],
        "tokenizer.ggml.token_type": [],
        "tokenizer.ggml.tokens": [],
        "tokenizer.ggml.unknown_token_id": 0,
    }


def _tensor(name: str, kind: str, *shape: int) -> dict[str, Any]:
    return {"name": name, "type": kind, "shape": list(shape)}


def _block(index: int) -> list[dict[str, Any]]:
    width, hidden = EMBEDDING_LENGTH, FEED_FORWARD_LENGTH
    at = f"blk.{index}."
    return [
        _tensor(at + "attn_k.weight", "Q4_0", width, width),
        _tensor(at + "attn_norm.weight", "F32", width),
        _tensor(at + "attn_output.weight", "Q4_0", width, width),
        _tensor(at + "attn_q.weight", "Q4_0", width, width),
        _tensor(at + "attn_v.weight", "Q4_0", width, width),
        _tensor(at + "ffn_down.weight", "Q4_0", hidden, width),
        _tensor(at + "ffn_gate.weight", "Q4_0", width, hidden),
        _tensor(at + "ffn_norm.weight", "F32", width),
        _tensor(at + "ffn_up.weight", "Q4_0", width, hidden),
    ]


# GGUF order: the embedding table, each block's nine tensors, the output norm and head.
TENSORS: list[dict[str, Any]] = [
    _tensor("token_embd.weight", "Q4_0", EMBEDDING_LENGTH, VOCABULARY),
    *(tensor for index in range(BLOCKS) for tensor in _block(index)),
    _tensor("output_norm.weight", "F32", EMBEDDING_LENGTH),
    _tensor("output.weight", "Q6_K", EMBEDDING_LENGTH, VOCABULARY),
]
