"""Ollama's local model store: ``/api/pull``, ``/api/delete`` and ``/api/copy`` as v0.11.4's
``server/routes.go`` answers them (PullHandler, DeleteHandler, CopyHandler; ``server/images.go``
PullModel for the progress lines).

Each mock instance has its own list of models (``Call.set_models``): a pull adds one, a copy adds
its destination, a delete removes one; ``POST /__mock__/reset`` restores the configured list.

The registry the mock "pulls" from knows the well-known library models in ``REGISTRY`` (any tag)
and the models the mock was configured with; any other name is unknown to it, and its pull fails
as a pull from registry.ollama.ai does: ``pull model manifest: file does not exist``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import ollama_request
from .base import BytesReply, Call, JsonReply, Reply, StreamReply, ndjson_line
from .ollama_request import error, resolve_model, tagged

NDJSON = "application/x-ndjson"
# waitForStream sets "application/json" before gin's c.JSON, which then keeps it (no charset)
PLAIN_JSON = "application/json"

REGISTRY = frozenset({
    "llama2", "llama2-uncensored", "codellama", "llama3", "llama3.1", "llama3.2", "llama3.3",
    "mistral", "mixtral", "gemma", "gemma2", "gemma3", "phi3", "phi4", "qwen2", "qwen2.5",
    "qwen3", "deepseek-r1", "gpt-oss", "tinyllama", "orca-mini", "vicuna", "nomic-embed-text",
    "all-minilm", "mxbai-embed-large", "llava",
})
PULL_NOT_FOUND = "pull model manifest: file does not exist"

# model.ParseName's parts: [host/][namespace/]model[:tag]
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")


def digest(name: str) -> str:
    return hashlib.sha256(tagged(name).encode()).hexdigest()


def size(name: str) -> int:
    return 3_826_793_677 + int(digest(name)[:6], 16)  # a 7B Q4_0 GGUF, a little apart per name


def valid_name(name: str) -> bool:
    """model.ParseName(name).IsValid(), for the names a client sends."""
    base, _, tag = name.partition(":") if name.count(":") == 1 else (name, "", "")
    if name.count(":") > 1 or (":" in name and not _TAG.fullmatch(tag)):
        return False
    parts = base.split("/")
    return 1 <= len(parts) <= 3 and all(_PART.fullmatch(part) for part in parts)


def _in_registry(call: Call, name: str) -> bool:
    model = name.partition(":")[0].rsplit("/", 1)[-1].lower()
    return model in REGISTRY or resolve_model(call.settings.models, name) is not None


def _layers(name: str) -> list[tuple[str, int]]:
    """(digest, size) of a Llama 2 manifest's layers: weights, license, template, params, and
    the config blob last (PullModel appends it)."""
    total = size(name)
    small = {"license": 7_020, "template": 59, "params": 91, "config": 557}
    layers = [("model", total - sum(small.values())), *small.items()]
    return [
        ("sha256:" + hashlib.sha256(f"{tagged(name)}/{kind}".encode()).hexdigest(), length)
        for kind, length in layers
    ]


def _progress(status: str, **fields: Any) -> dict[str, Any]:
    """An api.ProgressResponse: digest, total and completed are omitempty."""
    return {"status": status, **{key: value for key, value in fields.items() if value}}


def _pull_lines(name: str, present: bool) -> list[dict[str, Any]]:
    lines = [_progress("pulling manifest")]
    for layer_digest, total in _layers(name):
        status = f"pulling {layer_digest[7:19]}"
        if present:  # downloadBlob finds the blob: one line, complete
            lines.append(_progress(status, digest=layer_digest, total=total, completed=total))
            continue
        for completed in (0, total // 2, total):
            lines.append(_progress(status, digest=layer_digest, total=total, completed=completed))
    lines += [_progress("verifying sha256 digest"), _progress("writing manifest"),
              _progress("success")]
    return lines


def _set(call: Call, models: tuple[str, ...]) -> None:
    if call.set_models is not None:
        call.set_models(models)


def pull(call: Call) -> Reply:
    request = ollama_request.decode(call, "PullRequest", ollama_request.PULL_FIELDS)
    if not isinstance(request, dict):
        return request
    name = request.get("model") or request.get("name") or ""
    if not valid_name(name):
        return error(400, "invalid model name")
    stream = request.get("stream") is not False
    if not _in_registry(call, name):
        if not stream:
            return JsonReply(500, {"error": PULL_NOT_FOUND}, content_type=PLAIN_JSON)
        lines = [_progress("pulling manifest"), {"error": PULL_NOT_FOUND}]
        return StreamReply([ndjson_line(line) for line in lines], content_type=NDJSON)
    present = resolve_model(call.settings.models, name) is not None
    if not present:
        _set(call, (*call.settings.models, name))
    if not stream:
        return JsonReply(200, {"status": "success"}, content_type=PLAIN_JSON)
    return StreamReply([ndjson_line(line) for line in _pull_lines(name, present)],
                       content_type=NDJSON)


def _empty_ok() -> Reply:
    return BytesReply(200, b"", content_type="")  # the handler writes nothing: no content type


def delete(call: Call) -> Reply:
    request = ollama_request.decode(call, "DeleteRequest", ollama_request.DELETE_FIELDS)
    if not isinstance(request, dict):
        return request
    name = request.get("model") or request.get("name") or ""
    if not valid_name(name):
        return error(400, f"name {ollama_request.go_quote(name)} is invalid")
    model = resolve_model(call.settings.models, name)
    if model is None:
        return error(404, f"model '{name}' not found")
    _set(call, tuple(m for m in call.settings.models if m != model))
    return _empty_ok()


def copy(call: Call) -> Reply:
    request = ollama_request.decode(call, "CopyRequest", ollama_request.COPY_FIELDS)
    if not isinstance(request, dict):
        return request
    source = request.get("source") or ""
    destination = request.get("destination") or ""
    if not valid_name(source):
        return error(400, f"source {ollama_request.go_quote(source)} is invalid")
    if not valid_name(destination):
        return error(400, f"destination {ollama_request.go_quote(destination)} is invalid")
    if resolve_model(call.settings.models, source) is None:
        return error(404, f"model {ollama_request.go_quote(source)} not found")
    if resolve_model(call.settings.models, destination) is None:
        _set(call, (*call.settings.models, destination))
    return _empty_ok()
