"""Serving recorded exchanges (``proxyproof mock KIND --replay DIR``).

The request pipeline asks ``Replayer.answer`` before the mock's own handler: a request that
matches a cassette (``cassette_match``) gets the recorded reply — the same status, headers and
body bytes, a stream frame by frame, with the recorded gaps between frames when ``timing`` is
on. An unmatched request gets the mock's generated reply, or with ``strict`` a
``501 {"error": ..., "closest": ..., "differences": [...]}``: 501, not 404, because a recorded
404 (Ollama's "model not found") is a real reply a client must be able to tell apart.

Replies are ordinary ``Reply`` values, so they are journaled, and a control-API script's fault
(a reset mid-stream, a slow stream) applies to them as to any reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from .base import BytesReply, Call, JsonReply, Reply, StreamReply
from .cassette import SUFFIXES, Cassette, CassetteError, loads
from .cassette_match import Miss, Received, find, miss_message
from .redaction import MASK, UNRECORDED_HEADERS

MISS_STATUS = 501


def cassette_paths(directory: Path) -> list[Path]:
    """The cassette files in ``directory``, by name ([] when it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir()
                  if path.is_file() and path.suffix in SUFFIXES and not path.name.startswith("."))


def read_directory(directory: Path) -> list[Cassette]:
    """Every cassette in ``directory``; ``CassetteError`` naming the file for a bad one."""
    paths = cassette_paths(directory)
    if not paths:
        raise CassetteError(f"{directory}: no cassettes (*.yaml, *.yml, *.json) to replay")
    cassettes = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
            cassettes.append(loads(text, name=path.name, as_json=path.suffix == ".json"))
        except (OSError, UnicodeDecodeError) as problem:
            raise CassetteError(f"{path}: cannot be read ({problem})") from None
        except CassetteError as problem:
            raise CassetteError(f"{path}: {problem}") from None
    return cassettes


def _headers(cassette: Cassette) -> dict[str, str]:
    """Recorded reply headers to send again; aiohttp sets the per-connection ones itself, and
    a redacted one (a cookie) is left out rather than sent as ``***``."""
    return {name: ", ".join(value) if isinstance(value, list) else str(value)
            for name, value in cassette.response.headers.items()
            if name.lower() not in UNRECORDED_HEADERS and value != MASK}


def recorded_reply(cassette: Cassette, *, timing: bool = False) -> Reply:
    """The reply ``cassette`` recorded, as the pipeline sends it."""
    response = cassette.response
    headers = _headers(cassette)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if response.stream is not None:
        frames = response.frames
        delays = tuple(max(0.0, later.at - earlier.at)
                       for earlier, later in zip(frames, frames[1:], strict=False))
        return StreamReply(frames=[frame.data for frame in frames], status=response.status,
                           content_type=content_type or "text/event-stream", headers=headers,
                           delays=(0.0, *delays) if timing and frames else ())
    # aiohttp's own default where the server sent no Content-Type
    return BytesReply(response.status, response.body,
                      content_type=content_type or "application/octet-stream", headers=headers)


def received(call: Call) -> Received:
    return Received(call.method, call.path, call.json, call.body.decode("utf-8", "replace"))


class Replayer:
    """Answers requests from recorded cassettes (``pipeline.Source``)."""

    def __init__(self, cassettes: Sequence[Cassette], *,
                 ignored: Sequence[tuple[str, ...]] = (), strict: bool = False,
                 timing: bool = False) -> None:
        self.cassettes = list(cassettes)
        self.ignored = tuple(ignored)
        self.strict, self.timing = strict, timing

    def match(self, call: Call) -> Cassette | Miss:
        return find(self.cassettes, received(call), self.ignored)

    async def answer(self, request: web.Request, call: Call, entry: object) -> Reply | None:
        found = self.match(call)
        if isinstance(found, Cassette):
            return recorded_reply(found, timing=self.timing)
        if not self.strict:
            return None  # the mock's own generated reply
        return miss_reply(received(call), found)


def miss_reply(request: Received, miss: Miss) -> JsonReply:
    """The strict-mode answer to a request no cassette matches."""
    return JsonReply(MISS_STATUS, {
        "error": miss_message(request, miss),
        "closest": None if miss.closest is None else miss.closest.name,
        "differences": [difference.to_json() for difference in miss.differences],
    }, headers={"X-Proxyproof-Replay": "miss"})
