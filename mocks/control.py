"""The control API every mock serves under ``/__mock__/``: request journal, scripts, fault_spec.

JSON in, JSON out. Control requests are neither journaled nor scripted. A bad control request
gets ``400 {"error": "<what is wrong>"}``; an unknown one 404, a wrong method 405.

``GET /__mock__/``
    Describes the mock: ``kind``, ``description``, ``settings`` (``models``, ``latency``,
    ``api_key_set`` — never the key), ``endpoints`` (method, path, public), ``control`` (these
    endpoints) and ``fault_kinds`` (each with its parameters and defaults).

``GET /__mock__/journal[?path=/exact/path][&since=<id>]``
    ``{"requests": [entry, ...]}``, oldest first, optionally only one path and/or only entries
    with an id greater than ``since``. An entry::

        {"id": 1, "time": 1732550000.12, "method": "POST", "path": "/api/chat",
         "query": {"k": "v"}, "headers": {"Content-Type": "application/json", ...},
         "body": <the parsed JSON, else the text ("" when empty)>,
         "status": 200,          # null until the headers went out (and after a reset before them)
         "outcome": "completed", # pending | completed | client_disconnected | reset | empty |
                                 # truncated
         "ended": 1732550000.15, # null while pending
         "frames_sent": 12,      # stream frames written (0 for a non-streamed reply)
         "frame_times": [1732550000.13, ...]}   # when each stream frame was written

    Headers are recorded as received, credentials included: the journal is the test's view of
    what reached the upstream. Repeated headers are joined with ", "; a repeated query parameter
    becomes a list. The journal keeps the latest 10,000 requests.
``DELETE /__mock__/journal``
    Clears it (ids keep counting).
``GET /__mock__/journal/{id}``
    One entry; 404 if unknown.
``GET /__mock__/journal/{id}/wait?timeout=S``
    Long-polls until that request has ended (S defaults to 5, at most 300) and returns the entry;
    ``408 {"error": ...}`` if it has not ended in time. An id not yet assigned waits for that
    request to arrive and end.

``POST /__mock__/scripts``
    Adds a script; answers ``{"id": <int>}``. Body::

        {"match": {"method": "POST", "path": "/api/*", "body_contains": "INST",
                   "headers": {"Authorization": "Bearer k"}},     # every field optional
         "times": 2,                                               # omit for "always"
         <one action>}

    ``path`` is exact or a glob where ``*`` matches anything (``/models/*``); ``body_contains``
    is a substring of the raw body; header names are case-insensitive, values exact. Scripts are
    tried in the order they were added; the first match wins and uses up one of its ``times``.
    The action is one of:

    - ``"response": {"status": 200, "json": <any> | "body": "<text>", "headers": {..},
      "content_type": ".."}`` — answered as is (before the API-key check);
    - ``"reply": "<text>"`` — the text replaces the generated reply; the server still answers in
      its own protocol (stream or not, token counts from this text);
    - ``"fault": {"kind": "<kind>", <parameters>}``, one of (defaults in brackets):
      ``status`` {status, json | body, headers, content_type}: any status and body;
      ``latency`` {seconds}: wait before the headers, then the normal reply;
      ``chunk_delay`` {seconds}: wait between stream frames (a slow token stream);
      ``reset_before_headers``: a TCP reset before any byte;
      ``reset_mid_stream`` {after_frames [1]}: headers and that many frames, then a reset;
      ``empty_response``: close cleanly without a single byte;
      ``malformed_json``: the body (or the first stream frame) cut so it does not parse;
      ``truncated_stream`` {after_frames [1]}: that many frames, then a clean end without the
      final frames; ``rate_limit`` {retry_after [1]}: 429 in the server's dialect with
      ``Retry-After``; ``loading`` {estimated_time [20.0]}: the server's "model is loading"
      reply; ``stream_error`` {after_frames [1], message}: that many frames, then the server's
      mid-stream error event. On a non-streamed reply, ``reset_mid_stream`` cuts the body half
      way, ``truncated_stream`` ends it cleanly half way, ``stream_error`` answers the server's
      500 error and ``chunk_delay`` does nothing (details in ``transmit``).
``GET /__mock__/scripts``
    ``{"scripts": [{"id", "match", "times", "remaining", "hits", <action>}, ...]}``; a script
    whose ``times`` are used up stays listed with ``remaining: 0`` and no longer matches.
``GET /__mock__/scripts/{id}`` / ``DELETE /__mock__/scripts/{id}``
    One script / remove it.
``DELETE /__mock__/scripts``
    Removes all scripts.
``POST /__mock__/reset``
    Clears the journal and the scripts.

``MockControl(url)`` is the same API from Python (synchronous, standard library only).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fault_spec, strict_json
from .base import NOT_JSON, Call, MockKind, MockSettings, Reply

JOURNAL_LIMIT = 10_000
MAX_WAIT = 300.0
CONTROL_PREFIX = "/__mock__"
CONTROL_ENDPOINTS = (
    "GET /__mock__/",
    "GET /__mock__/journal",
    "DELETE /__mock__/journal",
    "GET /__mock__/journal/{id}",
    "GET /__mock__/journal/{id}/wait?timeout=S",
    "GET /__mock__/scripts",
    "POST /__mock__/scripts",
    "DELETE /__mock__/scripts",
    "GET /__mock__/scripts/{id}",
    "DELETE /__mock__/scripts/{id}",
    "POST /__mock__/reset",
)


# --- journal --------------------------------------------------------------------------------


class JournalEntry:
    """One received request and what became of it. Serialised lazily (cheap to record)."""

    __slots__ = (
        "id", "time", "request", "status", "outcome", "ended", "frames_sent", "frame_times"
    )

    def __init__(self, entry_id: int, request: Call) -> None:
        self.id = entry_id
        self.time = time.time()
        self.request = request
        self.status: int | None = None
        self.outcome = "pending"
        self.ended: float | None = None
        self.frames_sent = 0
        self.frame_times: list[float] = []

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.path

    def to_json(self) -> dict[str, Any]:
        request = self.request
        body = request.json
        if body is NOT_JSON:
            body = request.body.decode("utf-8", "replace")
        return {
            "id": self.id,
            "time": self.time,
            "method": request.method,
            "path": request.path,
            "query": _multi(request.query, join=False),
            "headers": _multi(request.headers, join=True),
            "body": body,
            "status": self.status,
            "outcome": self.outcome,
            "ended": self.ended,
            "frames_sent": self.frames_sent,
            "frame_times": list(self.frame_times),
        }


def _multi(values: Mapping[str, str], *, join: bool) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name not in result:
            result[name] = value
        elif join:
            result[name] = f"{result[name]}, {value}"
        elif isinstance(result[name], list):
            result[name].append(value)
        else:
            result[name] = [result[name], value]
    return result


class Journal:
    """Every request a mock received, in order, with event-based waiting for its end."""

    def __init__(self, limit: int = JOURNAL_LIMIT) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=limit)
        self._next_id = 1
        self._waiters: dict[int, list[asyncio.Future[JournalEntry]]] = {}

    def record(self, request: Call) -> JournalEntry:
        entry = JournalEntry(self._next_id, request)
        self._next_id += 1
        self._entries.append(entry)
        return entry

    def finish(self, entry: JournalEntry) -> None:
        if entry.outcome == "pending":
            entry.outcome = "completed"
        entry.ended = time.time()
        for waiter in self._waiters.pop(entry.id, ()):
            if not waiter.done():
                waiter.set_result(entry)

    def entries(self, path: str | None = None, since: int = 0) -> list[JournalEntry]:
        return [e for e in self._entries if e.id > since and (path is None or e.path == path)]

    def get(self, entry_id: int) -> JournalEntry | None:
        if not self._entries:
            return None
        offset = entry_id - self._entries[0].id
        return self._entries[offset] if 0 <= offset < len(self._entries) else None

    def clear(self) -> None:
        self._entries.clear()

    async def wait(self, entry_id: int, timeout: float) -> JournalEntry | None:
        """The entry once it has ended; None on timeout. ``KeyError`` if it is gone."""
        entry = self.get(entry_id)
        if entry is not None and entry.ended is not None:
            return entry
        if entry is None and entry_id < self._next_id:
            raise KeyError(entry_id)
        waiter: asyncio.Future[JournalEntry] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(entry_id, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            pending = self._waiters.get(entry_id)
            if pending and waiter in pending:
                pending.remove(waiter)
                if not pending:
                    del self._waiters[entry_id]


# --- scripts --------------------------------------------------------------------------------

_MATCH_FIELDS = frozenset({"method", "path", "body_contains", "headers"})
_ACTIONS = ("response", "reply", "fault")


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches anything; a pattern without one matches exactly that path."""
    return re.compile(".*".join(map(re.escape, pattern.split("*"))) + r"\Z")


@dataclass
class Script:
    id: int
    spec: dict[str, Any]  # as posted, for listing
    method: str | None
    path: re.Pattern[str] | None
    body_contains: bytes | None
    headers: tuple[tuple[str, str], ...]
    remaining: int | None  # None: always
    response: Reply | None = None
    reply: str | None = None
    fault: fault_spec.Fault | None = None
    hits: int = 0

    def matches(self, call: Call) -> bool:
        return (
            self.remaining != 0
            and (self.method is None or call.method == self.method)
            and (self.path is None or self.path.match(call.path) is not None)
            and (self.body_contains is None or self.body_contains in call.body)
            and all(call.headers.get(name) == value for name, value in self.headers)
        )

    def to_json(self) -> dict[str, Any]:
        listed = {
            "id": self.id,
            "match": self.spec.get("match", {}),
            "times": self.spec.get("times"),
            "remaining": self.remaining,
            "hits": self.hits,
        }
        for action in _ACTIONS:
            if action in self.spec:
                listed[action] = self.spec[action]
        return listed


def parse_script(script_id: int, spec: Any) -> Script:
    """A ``Script`` from its control-API JSON; ``ValueError`` with a clear message if invalid."""
    if not isinstance(spec, dict):
        raise ValueError("a script must be a JSON object")
    unknown = set(spec) - {"match", "times", *_ACTIONS}
    if unknown:
        raise ValueError(f"unknown script field(s): {', '.join(sorted(unknown))}")
    match = spec.get("match") or {}
    if not isinstance(match, dict):
        raise ValueError("'match' must be an object")
    unknown = set(match) - _MATCH_FIELDS
    if unknown:
        raise ValueError(
            f"unknown match field(s): {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(_MATCH_FIELDS))}"
        )
    for name in ("method", "path", "body_contains"):
        if name in match and not isinstance(match[name], str):
            raise ValueError(f"match.{name} must be a string")
    path = match.get("path")
    if path is not None and not path.startswith("/"):
        raise ValueError("match.path must start with '/'")
    headers = fault_spec.string_map("match.headers", match.get("headers", {}))
    times = spec.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ValueError("'times' must be a positive integer (omit it for always)")
    actions = [action for action in _ACTIONS if action in spec]
    if len(actions) != 1:
        raise ValueError("a script needs exactly one of 'response', 'reply' or 'fault'")
    script = Script(
        id=script_id,
        spec=spec,
        method=match["method"].upper() if "method" in match else None,
        path=None if path is None else _glob(path),
        body_contains=match["body_contains"].encode() if "body_contains" in match else None,
        headers=tuple(headers.items()),
        remaining=times,
    )
    if actions[0] == "response":
        script.response = fault_spec.parse_response(spec["response"])
    elif actions[0] == "reply":
        if not isinstance(spec["reply"], str):
            raise ValueError("'reply' must be a string: the text of the reply")
        script.reply = spec["reply"]
    else:
        script.fault = fault_spec.parse_fault(spec["fault"])
    return script


class Scripts:
    """Scripted responses, tried in the order they were added."""

    def __init__(self) -> None:
        self._scripts: list[Script] = []
        self._next_id = 1

    def __bool__(self) -> bool:
        return bool(self._scripts)

    def add(self, spec: Any) -> Script:
        script = parse_script(self._next_id, spec)
        self._next_id += 1
        self._scripts.append(script)
        return script

    def match(self, call: Call) -> Script | None:
        """The first script that matches ``call``, which uses up one of its ``times``."""
        for script in self._scripts:
            if script.matches(call):
                script.hits += 1
                if script.remaining is not None:
                    script.remaining -= 1
                return script
        return None

    def all(self) -> list[Script]:
        return list(self._scripts)

    def get(self, script_id: int) -> Script | None:
        return next((s for s in self._scripts if s.id == script_id), None)

    def remove(self, script_id: int) -> bool:
        script = self.get(script_id)
        if script is not None:
            self._scripts.remove(script)
        return script is not None

    def clear(self) -> None:
        self._scripts.clear()


# --- state and the API ----------------------------------------------------------------------


@dataclass
class MockState:
    """Everything a running mock remembers."""

    kind: MockKind
    settings: MockSettings
    journal: Journal = field(default_factory=Journal)
    scripts: Scripts = field(default_factory=Scripts)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name,
            "description": self.kind.description,
            "settings": {
                "models": list(self.settings.models),
                "latency": self.settings.latency,
                "api_key_set": self.settings.api_key is not None,
            },
            "endpoints": [
                {"method": e.method, "path": e.path, "public": e.public}
                for e in self.kind.endpoints
            ],
            "control": list(CONTROL_ENDPOINTS),
            "fault_kinds": fault_spec.describe_faults(),
        }


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _id(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ControlError(400, f"{what} id must be an integer, got {text!r}") from None


def _allow(method: str, allowed: tuple[str, ...], path: str) -> None:
    if method not in allowed:
        raise ControlError(405, f"{path} allows {', '.join(allowed)}, not {method}")


def _long_poll_target(path: str, method: str) -> int | None:
    """The entry id when ``path`` is the long-poll endpoint, which alone has to wait."""
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[1] == "journal" and parts[3] == "wait":
        _allow(method, ("GET",), path)
        return _id(parts[2], "journal entry")
    return None


def _wait_timeout(query: Mapping[str, str]) -> float:
    raw = query.get("timeout", "5")
    try:
        timeout = float(raw)
    except ValueError:
        raise ControlError(400, f"timeout must be a number of seconds, got {raw!r}") from None
    if not 0 <= timeout <= MAX_WAIT:
        raise ControlError(400, f"timeout must be between 0 and {MAX_WAIT:g} seconds")
    return timeout


async def respond(
    state: MockState, method: str, path: str, query: Mapping[str, str], body: bytes
) -> tuple[int, Any]:
    """Answer one control request that came over HTTP: ``(status, JSON body)``."""
    payload = strict_json.parse_body(body)
    if body.strip() and payload is NOT_JSON:
        return 400, {"error": "the control API takes a JSON body"}
    try:
        entry_id = _long_poll_target(path, method)
        if entry_id is None:
            return _handle(state, method, path, query, payload)
        return await _long_poll(state, entry_id, _wait_timeout(query))
    except ControlError as problem:
        return problem.status, {"error": problem.message}


def handle(
    state: MockState, method: str, path: str, query: Mapping[str, str], payload: Any
) -> tuple[int, Any]:
    """Answer one control request in process (all but the long poll): ``(status, JSON body)``."""
    try:
        return _handle(state, method, path, query, payload)
    except ControlError as problem:
        return problem.status, {"error": problem.message}


def _handle(
    state: MockState, method: str, path: str, query: Mapping[str, str], payload: Any
) -> tuple[int, Any]:
    parts = path.strip("/").split("/")[1:]
    if not parts:
        _allow(method, ("GET",), path)
        return 200, state.describe()
    head, rest = parts[0], parts[1:]
    if head == "journal" and not rest:
        _allow(method, ("GET", "DELETE"), path)
        if method == "DELETE":
            state.journal.clear()
            return 200, {"cleared": True}
        since = _id(query.get("since", "0"), "since")
        entries = state.journal.entries(query.get("path"), since)
        return 200, {"requests": [e.to_json() for e in entries]}
    if head == "journal" and len(rest) == 1:
        _allow(method, ("GET",), path)
        entry = state.journal.get(_id(rest[0], "journal entry"))
        if entry is None:
            raise ControlError(404, f"no journal entry {rest[0]}")
        return 200, entry.to_json()
    if head == "scripts" and not rest:
        _allow(method, ("GET", "POST", "DELETE"), path)
        if method == "GET":
            return 200, {"scripts": [s.to_json() for s in state.scripts.all()]}
        if method == "DELETE":
            state.scripts.clear()
            return 200, {"cleared": True}
        if payload is NOT_JSON:
            raise ControlError(400, "POST /__mock__/scripts needs a JSON body")
        try:
            script = state.scripts.add(payload)
        except ValueError as problem:
            raise ControlError(400, str(problem)) from None
        return 200, {"id": script.id}
    if head == "scripts" and len(rest) == 1:
        _allow(method, ("GET", "DELETE"), path)
        script_id = _id(rest[0], "script")
        script = state.scripts.get(script_id)
        if script is None:
            raise ControlError(404, f"no script {script_id}")
        if method == "DELETE":
            state.scripts.remove(script_id)
            return 200, {"removed": script_id}
        return 200, script.to_json()
    if head == "reset" and not rest:
        _allow(method, ("POST",), path)
        state.journal.clear()
        state.scripts.clear()
        return 200, {"reset": True}
    raise ControlError(404, f"no control endpoint {method} {path}; see GET /__mock__/")


async def _long_poll(state: MockState, entry_id: int, timeout: float) -> tuple[int, Any]:
    try:
        entry = await state.journal.wait(entry_id, timeout)
    except KeyError:
        raise ControlError(404, f"no journal entry {entry_id} (cleared or dropped)") from None
    if entry is None:
        raise ControlError(408, f"request {entry_id} has not ended within {timeout:g}s")
    return 200, entry.to_json()


# --- the Python client ----------------------------------------------------------------------


class MockControl:
    """A synchronous client of a mock's control API.

    ``MockControl(url)`` talks HTTP (standard library only, no proxies). ``MockServer`` hands out
    an in-process one instead: calling HTTP from inside the mock's own event loop would block the
    loop that has to answer. Errors: 400 raises ``ValueError``, 404 ``LookupError``, a ``wait``
    that times out ``TimeoutError``.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._state: MockState | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def in_process(cls, url: str, state: MockState) -> MockControl:
        control = cls(url)
        control._state = state
        return control

    def _call(
        self, method: str, path: str, payload: Any = None, query: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        query = dict(query or {})
        if self._state is not None:
            status, body = handle(
                self._state, method, CONTROL_PREFIX + path, query,
                NOT_JSON if payload is None else json.loads(json.dumps(payload)),
            )
        else:
            status, body = self._http(method, path, payload, query, timeout)
        if status == 400:
            raise ValueError(body.get("error", body))
        if status == 404:
            raise LookupError(body.get("error", body))
        if status == 408:
            raise TimeoutError(body.get("error", body))
        if status >= 300:
            raise RuntimeError(f"control API answered {status}: {body}")
        return body

    def _http(
        self, method: str, path: str, payload: Any, query: Mapping[str, str],
        timeout: float | None,
    ) -> tuple[int, Any]:
        url = self.url + CONTROL_PREFIX + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=timeout or self._timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw)
            except ValueError:
                return error.code, {"error": raw.decode("utf-8", "replace")}

    def describe(self) -> dict[str, Any]:
        return self._call("GET", "/")

    def journal(self, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Received requests, oldest first (optionally one exact path, ids after ``since``)."""
        query = {"since": str(since)}
        if path is not None:
            query["path"] = path
        return self._call("GET", "/journal", query=query)["requests"]

    def entry(self, entry_id: int) -> dict[str, Any]:
        return self._call("GET", f"/journal/{entry_id}")

    def clear_journal(self) -> None:
        self._call("DELETE", "/journal")

    def wait(self, entry_id: int, timeout: float = 5.0) -> dict[str, Any]:
        """The entry once its request has ended (``TimeoutError`` if not within ``timeout``)."""
        if self._state is not None:
            entry = self._state.journal.get(entry_id)
            if entry is not None and entry.ended is not None:
                return entry.to_json()
            raise RuntimeError(
                "MockControl.wait cannot block the mock's own event loop; "
                "use `await server.wait(entry_id)` on the MockServer"
            )
        return self._call(
            "GET", f"/journal/{entry_id}/wait", query={"timeout": str(timeout)},
            timeout=timeout + 5,
        )

    def script(
        self,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
        response: Mapping[str, Any] | None = None,
        reply: str | None = None,
        fault: Mapping[str, Any] | None = None,
    ) -> int:
        """Add a script (see the module docstring); returns its id."""
        spec: dict[str, Any] = {"match": dict(match or {})}
        if times is not None:
            spec["times"] = times
        for name, value in (("response", response), ("reply", reply), ("fault", fault)):
            if value is not None:
                spec[name] = value
        return self._call("POST", "/scripts", spec)["id"]

    def fault(
        self,
        kind: str,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
        **params: Any,
    ) -> int:
        """Shorthand: ``fault("rate_limit", retry_after=2, times=1)``."""
        return self.script(match=match, times=times, fault={"kind": kind, **params})

    def scripts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/scripts")["scripts"]

    def remove_script(self, script_id: int) -> None:
        self._call("DELETE", f"/scripts/{script_id}")

    def clear_scripts(self) -> None:
        self._call("DELETE", "/scripts")

    def reset(self) -> None:
        self._call("POST", "/reset")
