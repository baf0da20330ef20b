"""The control API every mock serves under ``/__mock__/``: request journal, scripts, faults.

``CONTROL_ENDPOINTS`` is the one table of its endpoints, as WireMock's admin route table is: the
server dispatches through it (``respond`` over HTTP, ``handle`` in process), the Python client
(``control.MockControl``) builds its paths from it and ``GET /__mock__/`` lists it. Answers are
plain functions of the mock's state and the request; only the long poll awaits.

JSON in, JSON out. Control requests are neither journaled nor scripted. A bad control request
gets ``400 {"error": "<what is wrong>"}``; an unknown one 404, a wrong method 405. With a control
token (``--control-token``), a request without ``Authorization: Bearer <token>`` gets
``401 {"error": ...}``.

``GET /__mock__/``
    Describes the mock: ``kind``, ``description``, ``settings`` (``models``, ``latency``,
    ``api_key_set`` — never the key), ``control_token_set`` (never the token), ``journal``
    (``entries``, ``dropped``, ``limit``, ``body_bytes``), ``endpoints`` (method, path, public),
    ``control`` (these endpoints) and ``fault_kinds`` (each with its parameters and defaults).

``GET /__mock__/journal[?path=/exact/path][&since=<id>][&contains=<text>]``
    ``{"requests": [entry, ...], "dropped": N}``, oldest first, optionally only one path, only
    entries with an id greater than ``since`` and/or only requests whose body holds ``contains``
    (a substring of the raw body as kept). An entry::

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
    what reached the upstream (a value holding the control token shows as ``***``). Repeated
    headers are joined with ", "; a repeated query parameter becomes a list. Each entry also has
    ``body_length`` (bytes received) and ``truncated`` (the body is kept only up to
    ``--journal-body-bytes``, 1 MiB by default, and shown as text then). The journal keeps the
    latest ``--journal-entries`` requests (1000 by default); the answer's ``dropped`` counts the
    older ones pushed out. Every request to the emulated server is journaled, refused ones too.
    A mock served by several processes (``--workers N``) keeps that many entries in each, lists
    them all merged by id, and adds ``"worker": K`` to each entry (which process answered).
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
    - ``"fault": {"kind": "<kind>", <parameters>}`` — one of the kinds in ``fault_spec``
      (``status``, ``latency``, ``chunk_delay``, ``reset_before_headers``, ``reset_mid_stream``,
      ``empty_response``, ``malformed_json``, ``truncated_stream``, ``rate_limit``, ``loading``,
      ``stream_error``); ``GET /__mock__/`` lists each with its parameters and defaults.
``GET /__mock__/scripts``
    ``{"scripts": [{"id", "match", "times", "remaining", "hits", <action>}, ...]}``; a script
    whose ``times`` are used up stays listed with ``remaining: 0`` and no longer matches.
``GET /__mock__/scripts/{id}`` / ``DELETE /__mock__/scripts/{id}``
    One script / remove it.
``DELETE /__mock__/scripts``
    Removes all scripts.
``POST /__mock__/reset``
    Clears the journal and the scripts (those loaded at start with ``--scripts DIR`` come back).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import fault_spec, strict_json
from .base import NOT_JSON
from .journal import JournalEntry
from .scripts import Script
from .state import MockState

CONTROL_PREFIX = "/__mock__"
MAX_WAIT = 300.0


class ControlError(Exception):
    """A control request that cannot be answered: its status and message (``{"error": ...}``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class ControlRequest:
    params: Mapping[str, str]  # the path's placeholders, e.g. {"id": "3"}
    query: Mapping[str, str]
    payload: Any  # the JSON body; NOT_JSON when there is none


# The JSON body of a 200 answer; a refusal raises ControlError.
Answer = Callable[[MockState, ControlRequest], Any]


@dataclass(frozen=True)
class ControlEndpoint:
    name: str  # how ``MockControl`` refers to it
    method: str
    path: str  # under CONTROL_PREFIX; a ``{placeholder}`` stands for one path segment
    answer: Answer  # a coroutine function for the long poll, which alone has to wait
    listed_query: str = ""  # shown after the path in ``GET /__mock__/``'s ``control`` list

    @property
    def waits(self) -> bool:
        return inspect.iscoroutinefunction(self.answer)

    @property
    def listing(self) -> str:
        return f"{self.method} {CONTROL_PREFIX}{self.path}{self.listed_query}"

    def url_path(self, **params: object) -> str:
        """The request path, placeholders filled in: ``url_path(id=3)``."""
        return CONTROL_PREFIX + self.path.format(**params)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The placeholders' values if ``segments`` (the path after the prefix) fit this path."""
        pattern = self.path.strip("/").split("/") if self.path.strip("/") else []
        if len(pattern) != len(segments):
            return None
        params = {}
        for expected, given in zip(pattern, segments, strict=True):
            if expected.startswith("{"):
                params[expected[1:-1]] = given
            elif expected != given:
                return None
        return params


# --- the answers ----------------------------------------------------------------------------


def _id(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ControlError(400, f"{what} id must be an integer, got {text!r}") from None


def _describe(state: MockState, request: ControlRequest) -> Any:
    described = {
        "kind": state.kind.name,
        "description": state.kind.description,
        "settings": {
            "models": list(state.settings.models),
            "latency": state.settings.latency,
            "api_key_set": state.settings.api_key is not None,
        },
        "control_token_set": state.settings.control_token is not None,
        "journal": state.journal.summary(),
        "endpoints": [
            {"method": e.method, "path": e.path, "public": e.public} for e in state.kind.endpoints
        ],
        "control": [endpoint.listing for endpoint in CONTROL_ENDPOINTS],
        "fault_kinds": fault_spec.describe_faults(),
    }
    if state.sharing is not None:  # --workers N: the journal figures are summed over them
        described["workers"] = state.sharing.workers
    return described


def journal_selection(state: MockState, query: Mapping[str, str]) -> list[JournalEntry]:
    """The entries ``GET /__mock__/journal?path=&since=`` lists; ``ControlError`` 400."""
    since = _id(query.get("since", "0"), "since")
    contains = query.get("contains")
    return state.journal.entries(query.get("path"), since,
                                 None if contains is None else contains.encode())


def _journal(state: MockState, request: ControlRequest) -> Any:
    secret = state.settings.control_token
    entries = journal_selection(state, request.query)
    return {"requests": [entry.to_json(secret) for entry in entries],
            "dropped": state.journal.dropped}


def _clear_journal(state: MockState, request: ControlRequest) -> Any:
    state.journal.clear()
    return {"cleared": True}


def _entry(state: MockState, request: ControlRequest) -> Any:
    text = request.params["id"]
    entry = state.journal.get(_id(text, "journal entry"))
    if entry is None:
        raise ControlError(404, f"no journal entry {text}")
    return entry.to_json(state.settings.control_token)


def wait_timeout(query: Mapping[str, str]) -> float:
    raw = query.get("timeout", "5")
    try:
        timeout = float(raw)
    except ValueError:
        raise ControlError(400, f"timeout must be a number of seconds, got {raw!r}") from None
    if not 0 <= timeout <= MAX_WAIT:
        raise ControlError(400, f"timeout must be between 0 and {MAX_WAIT:g} seconds")
    return timeout


async def _wait(state: MockState, request: ControlRequest) -> Any:
    entry_id = _id(request.params["id"], "journal entry")
    timeout = wait_timeout(request.query)
    try:
        entry: JournalEntry | None = await state.journal.wait(entry_id, timeout)
    except KeyError:
        raise ControlError(404, f"no journal entry {entry_id} (cleared or dropped)") from None
    if entry is None:
        raise ControlError(408, f"request {entry_id} has not ended within {timeout:g}s")
    return entry.to_json(state.settings.control_token)


def _scripts(state: MockState, request: ControlRequest) -> Any:
    return {"scripts": [script.to_json() for script in state.scripts.all()]}


def _add_script(state: MockState, request: ControlRequest) -> Any:
    if request.payload is NOT_JSON:
        raise ControlError(400, "POST /__mock__/scripts needs a JSON body")
    try:
        script = state.scripts.add(request.payload)
    except ValueError as problem:
        raise ControlError(400, str(problem)) from None
    return {"id": script.id}


def _clear_scripts(state: MockState, request: ControlRequest) -> Any:
    state.scripts.clear()
    return {"cleared": True}


def _found_script(state: MockState, request: ControlRequest) -> Script:
    script_id = _id(request.params["id"], "script")
    script = state.scripts.get(script_id)
    if script is None:
        raise ControlError(404, f"no script {script_id}")
    return script


def _script(state: MockState, request: ControlRequest) -> Any:
    return _found_script(state, request).to_json()


def _remove_script(state: MockState, request: ControlRequest) -> Any:
    script = _found_script(state, request)
    state.scripts.remove(script.id)
    return {"removed": script.id}


def _reset(state: MockState, request: ControlRequest) -> Any:
    state.journal.clear()
    state.reset_scripts()  # back to those the mock started with (--scripts DIR), if any
    state.reset_models()
    return {"reset": True}


# Listed in this order; a path's allowed methods (in a 405) follow it too.
CONTROL_ENDPOINTS = (
    ControlEndpoint("describe", "GET", "/", _describe),
    ControlEndpoint("journal", "GET", "/journal", _journal),
    ControlEndpoint("clear_journal", "DELETE", "/journal", _clear_journal),
    ControlEndpoint("entry", "GET", "/journal/{id}", _entry),
    ControlEndpoint("wait", "GET", "/journal/{id}/wait", _wait, "?timeout=S"),
    ControlEndpoint("scripts", "GET", "/scripts", _scripts),
    ControlEndpoint("add_script", "POST", "/scripts", _add_script),
    ControlEndpoint("clear_scripts", "DELETE", "/scripts", _clear_scripts),
    ControlEndpoint("script", "GET", "/scripts/{id}", _script),
    ControlEndpoint("remove_script", "DELETE", "/scripts/{id}", _remove_script),
    ControlEndpoint("reset", "POST", "/reset", _reset),
)
BY_NAME = {endpoint.name: endpoint for endpoint in CONTROL_ENDPOINTS}


# --- dispatching ----------------------------------------------------------------------------


def resolve(method: str, path: str) -> tuple[ControlEndpoint, dict[str, str]]:
    """The endpoint answering ``method path`` and its placeholders; ``ControlError`` 404 / 405."""
    segments = path.strip("/").split("/")[1:]  # a trailing slash is tolerated
    fitting = [(e, params) for e in CONTROL_ENDPOINTS if (params := e.match(segments)) is not None]
    for endpoint, params in fitting:
        if endpoint.method == method:
            return endpoint, params
    if not fitting:
        raise ControlError(404, f"no control endpoint {method} {path}; see GET /__mock__/")
    allowed = ", ".join(endpoint.method for endpoint, _ in fitting)
    raise ControlError(405, f"{path} allows {allowed}, not {method}")


async def respond(
    state: MockState, method: str, path: str, query: Mapping[str, str], body: bytes
) -> tuple[int, Any]:
    """Answer one control request that came over HTTP: ``(status, JSON body)``."""
    payload = strict_json.parse_body(body)
    if body.strip() and payload is NOT_JSON:
        return 400, {"error": "the control API takes a JSON body"}
    try:
        endpoint, params = resolve(method, path)
        answer = endpoint.answer(state, ControlRequest(params, query, payload))
        return 200, (await answer if endpoint.waits else answer)
    except ControlError as problem:
        return problem.status, {"error": problem.message}


def handle(
    state: MockState, method: str, path: str, query: Mapping[str, str], payload: Any
) -> tuple[int, Any]:
    """Answer one control request in process: ``(status, JSON body)``. The long poll cannot be
    answered this way: it would block the event loop that has to end the request."""
    try:
        endpoint, params = resolve(method, path)
        if endpoint.waits:
            raise RuntimeError(f"{endpoint.listing} cannot be answered in process")
        return 200, endpoint.answer(state, ControlRequest(params, query, payload))
    except ControlError as problem:
        return problem.status, {"error": problem.message}
