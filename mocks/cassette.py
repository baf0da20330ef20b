"""Cassettes: one recorded exchange with a real server, as a readable YAML document. Pure.

A cassette holds what ``proxyproof mock KIND --record-from URL`` saw: the request (method, path,
query, headers, the JSON body — secrets already masked by ``redaction``) and the reply (status,
headers, and either the whole body or, for a stream, each frame with its time after the first).
The layout is documented in docs/cassettes.md; in short::

    proxyproof_cassette: 1
    kind: ollama
    recorded_from: http://gpu-box:11434
    recorded_at: '2025-06-01T12:00:00Z'
    request:
      method: POST
      path: /api/chat
      query: {}
      headers: {Content-Type: application/json, Authorization: '***'}
      json: {model: llama2, messages: [{role: user, content: hi}]}
    response:
      status: 200
      headers: {Content-Type: application/x-ndjson}
      stream: ndjson            # or sse; without it the reply is one `body`
      frames:
      - at: 0.0
        text: |
          {"model":"llama2","message":{"role":"assistant","content":"Hel"},"done":false}

Reply bytes are kept exactly: text as YAML strings (literal blocks where they hold newlines), and
``base64`` in place of ``text`` (``body_base64`` in place of ``body``) for bytes that are not
UTF-8 or would not survive YAML unchanged. ``dumps`` checks that what it writes reads back equal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .base import NOT_JSON

FORMAT_VERSION = 1
STREAM_KINDS = ("sse", "ndjson")
SUFFIXES = (".yaml", ".yml", ".json")
_HEADER = (
    "# A proxyproof cassette: one exchange recorded from a real server (docs/cassettes.md).\n"
    "# Replay matches request.method, request.path and request.json; '***' marks a secret.\n"
)

Headers = dict[str, Any]  # name -> value, or a list of values for a repeated header


class CassetteError(ValueError):
    """A cassette that cannot be read, said in one line."""


@dataclass(frozen=True)
class Frame:
    at: float  # seconds after the first frame
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Headers = field(default_factory=dict)
    headers: Headers = field(default_factory=dict)
    json: Any = NOT_JSON  # the parsed body; NOT_JSON when the body is empty or not JSON
    text: str = ""  # the body as text when it is not JSON


@dataclass(frozen=True)
class RecordedResponse:
    status: int
    headers: Headers = field(default_factory=dict)
    body: bytes = b""
    stream: str | None = None  # "sse" or "ndjson": the reply is ``frames``
    frames: tuple[Frame, ...] = ()


@dataclass(frozen=True)
class Cassette:
    kind: str
    request: RecordedRequest
    response: RecordedResponse
    recorded_from: str = ""
    recorded_at: str = ""
    name: str = ""  # the file it was read from (not written into it)


# --- the file name ---------------------------------------------------------------------------


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")


def file_name(method: str, path: str, body: Any) -> str:
    """A stable, descriptive name: ``post-api-chat-llama2-1a2b3c4d.yaml``.

    ``body`` is the JSON body as it is matched (masked, ignored fields left out), so recording
    the same request again replaces its cassette rather than adding a second one.
    """
    parts = [method.lower(), _slug(path, 60) or "root"]
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str) and _slug(model, 40):
        parts.append(_slug(model, 40))
    key = json.dumps([method.upper(), path, None if body is NOT_JSON else body],
                     sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    parts.append(hashlib.sha256(key.encode()).hexdigest()[:8])
    return "-".join(parts) + ".yaml"


# --- writing ---------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks: a frame's JSON stays readable, unescaped."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and "\r" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Seconds(float):
    """A frame's time: written as 0.000098, not 9.8e-05."""


def _seconds(dumper: yaml.SafeDumper, value: _Seconds) -> yaml.ScalarNode:
    text = f"{value:.6f}".rstrip("0")
    return dumper.represent_scalar("tag:yaml.org,2002:float", text + "0" if text.endswith(".")
                                   else text)


_Dumper.add_representer(str, _string)
_Dumper.add_representer(_Seconds, _seconds)


def _bytes_field(name: str, data: bytes, force_base64: bool) -> dict[str, Any]:
    if not force_base64:
        try:
            return {name: data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    key = "base64" if name == "text" else f"{name}_base64"
    return {key: base64.b64encode(data).decode("ascii")}


def to_document(cassette: Cassette, *, force_base64: bool = False) -> dict[str, Any]:
    request, response = cassette.request, cassette.response
    recorded: dict[str, Any] = {"method": request.method, "path": request.path,
                                "query": dict(request.query), "headers": dict(request.headers)}
    if request.json is not NOT_JSON:
        recorded["json"] = request.json
    elif request.text:
        recorded["text"] = request.text
    reply: dict[str, Any] = {"status": response.status, "headers": dict(response.headers)}
    if response.stream is not None:
        reply["stream"] = response.stream
        reply["frames"] = [{"at": _Seconds(round(frame.at, 6)),
                            **_bytes_field("text", frame.data, force_base64)}
                           for frame in response.frames]
    else:
        reply.update(_bytes_field("body", response.body, force_base64))
    return {
        "proxyproof_cassette": FORMAT_VERSION,
        "kind": cassette.kind,
        "recorded_from": cassette.recorded_from,
        "recorded_at": cassette.recorded_at,
        "request": recorded,
        "response": reply,
    }


def dumps(cassette: Cassette) -> str:
    """The cassette as YAML; bytes that would not read back unchanged are written as base64."""
    for force_base64 in (False, True):
        text = _HEADER + yaml.dump(to_document(cassette, force_base64=force_base64),
                                   Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                                   width=1 << 20)
        if _same_exchange(loads(text), cassette):
            return text
    raise CassetteError("the exchange cannot be written as YAML")  # pragma: no cover


def _same_exchange(read: Cassette, written: Cassette) -> bool:
    def exact(response: RecordedResponse) -> tuple[Any, ...]:
        frames = tuple((round(frame.at, 6), frame.data) for frame in response.frames)
        return response.status, response.headers, response.body, response.stream, frames

    same_json = json.dumps(read.request.json, default=repr) == json.dumps(
        written.request.json, default=repr)
    return exact(read.response) == exact(written.response) and same_json


# --- reading ---------------------------------------------------------------------------------


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise CassetteError(f"{where} has no '{key}'")
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__
                                                                             for k in kind)
        raise CassetteError(f"{where}.{key} must be a {expected}, got {value!r:.60}")
    return value


def _mapping(container: dict[str, Any], key: str, where: str) -> Headers:
    value = container.get(key) or {}
    if not isinstance(value, dict):
        raise CassetteError(f"{where}.{key} must be a mapping")
    return {str(name): item for name, item in value.items()}


def _read_bytes(container: dict[str, Any], name: str, where: str) -> bytes:
    key64 = "base64" if name == "text" else f"{name}_base64"
    if key64 in container:
        try:
            return base64.b64decode(str(container[key64]), validate=True)
        except (binascii.Error, ValueError):
            raise CassetteError(f"{where}.{key64} is not valid base64") from None
    value = container.get(name, "")
    if not isinstance(value, str):
        raise CassetteError(f"{where}.{name} must be a string (or use {key64})")
    return value.encode("utf-8")


def _frames(response: dict[str, Any]) -> tuple[Frame, ...]:
    frames = response.get("frames") or []
    if not isinstance(frames, list):
        raise CassetteError("response.frames must be a list")
    read = []
    for index, item in enumerate(frames):
        where = f"response.frames[{index}]"
        if not isinstance(item, dict):
            raise CassetteError(f"{where} must be a mapping with 'at' and 'text'")
        at = item.get("at", 0.0)
        if not isinstance(at, int | float) or isinstance(at, bool) or at < 0:
            raise CassetteError(f"{where}.at must be seconds (0 or more)")
        read.append(Frame(float(at), _read_bytes(item, "text", where)))
    return tuple(read)


def from_document(document: Any) -> Cassette:
    """A ``Cassette`` from its parsed YAML or JSON; ``CassetteError`` says what is wrong."""
    if not isinstance(document, dict):
        raise CassetteError("not a cassette (expected a mapping with 'request' and 'response')")
    version = document.get("proxyproof_cassette", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CassetteError(f"cassette format {version!r} is not one this proxyproof reads "
                            f"({FORMAT_VERSION})")
    request = _require(document, "request", dict, "the cassette")
    response = _require(document, "response", dict, "the cassette")
    method = _require(request, "method", str, "request").upper()
    path = _require(request, "path", str, "request")
    if not path.startswith("/"):
        raise CassetteError("request.path must start with '/'")
    status = _require(response, "status", int, "response")
    if not 100 <= status <= 599:
        raise CassetteError(f"response.status {status} is not an HTTP status")
    stream = response.get("stream")
    if stream is not None and stream not in STREAM_KINDS:
        raise CassetteError(f"response.stream must be one of {', '.join(STREAM_KINDS)}")
    text = request.get("text", "")
    if not isinstance(text, str):
        raise CassetteError("request.text must be a string")
    return Cassette(
        kind=str(document.get("kind", "")),
        request=RecordedRequest(
            method=method, path=path, query=_mapping(request, "query", "request"),
            headers=_mapping(request, "headers", "request"),
            json=request.get("json", NOT_JSON), text=text,
        ),
        response=RecordedResponse(
            status=status, headers=_mapping(response, "headers", "response"),
            body=b"" if stream else _read_bytes(response, "body", "response"),
            stream=stream, frames=_frames(response) if stream else (),
        ),
        recorded_from=str(document.get("recorded_from", "")),
        recorded_at=str(document.get("recorded_at", "")),
    )


def loads(text: str, *, name: str = "", as_json: bool = False) -> Cassette:
    """Read a cassette's text (YAML, or JSON with ``as_json``)."""
    try:
        document = json.loads(text) if as_json else yaml.safe_load(text)
    except json.JSONDecodeError as problem:
        raise CassetteError(f"not valid JSON (line {problem.lineno}: {problem.msg})") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        reason = getattr(problem, "problem", None) or "unreadable"
        raise CassetteError(f"not valid YAML ({where}{reason})") from None
    cassette = from_document(document)
    return Cassette(cassette.kind, cassette.request, cassette.response, cassette.recorded_from,
                    cassette.recorded_at, name)
