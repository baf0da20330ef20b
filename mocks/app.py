"""Serving the mocks: the aiohttp application of one mock, and ways to run it.

Every request to a mock goes through one pipeline, in this order:

1. parse the body as strict JSON (``strict_json``) and journal the request (``/__mock__/``
   control requests excepted);
2. control-API scripts: the first matching script wins (``response`` answers at once; ``reply``
   replaces the generated text; a ``fault`` replaces the reply or alters it on the way out);
3. the API-key check when ``settings.api_key`` is set (``Authorization: Bearer <key>``, and
   ``X-Api-Key`` where ``KIND.x_api_key``, as on llama.cpp); endpoints marked ``public`` skip it; a
   bad key gets ``KIND.unauthorized(call)``;
4. the endpoint's handler (an unknown path gets ``KIND.not_found(call)``, a known path with the
   wrong method a 405 from ``KIND.error``; a handler that raises gets ``KIND.error(500, ...)``,
   never aiohttp's HTML page); ``GET`` endpoints also answer ``HEAD``;
5. ``settings.latency`` when the handler generated text (``call.generate``), then the reply is
   written by ``transmit.transmit``.

The endpoint is looked up before the scripts run, so every reply, a fault's included, sees the
``call.match_info`` of its path (the HF Inference API's loading reply names the requested model).

An endpoint may name its own mid-stream error frame (``Endpoint.stream_error``), which the
``stream_error`` fault then uses instead of ``KIND.stream_error`` (Ollama's ``/v1`` streams get SSE
errors, its native ones NDJSON).

Ways to run a mock: ``mock_app`` (the application), ``MockServer`` (``async with``, in the
running loop), ``run_mock`` (a background thread, for synchronous code and pytest) and
``serve_mocks`` (foreground, for the ``proxyproof mock`` command).
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from proxyproof.serving import AsyncServer, ThreadedServer, serve_forever

from . import KIND_NAMES, control_api, fault_spec, kind, strict_json, transmit
from .base import (
    BytesReply,
    Call,
    Endpoint,
    JsonReply,
    MockKind,
    MockSettings,
    Reply,
    StreamReply,
)
from .control import MockControl
from .journal import JournalEntry
from .state import MockState

logger = logging.getLogger("mocks")
STATE = web.AppKey("mock_state", MockState)
MAX_BODY = 64 * 1024 * 1024
DEFAULT_SETTINGS = MockSettings()
_REPLY_TYPES = (JsonReply, BytesReply, StreamReply)
_PLACEHOLDER = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})+))?\}")

Log = Callable[[str], None]


# --- routing --------------------------------------------------------------------------------


class EndpointTable:
    """Path -> endpoints by method. Static paths are one dict lookup; patterns are compiled once."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self._static: dict[str, dict[str, Endpoint]] = {}
        patterns: dict[str, dict[str, Endpoint]] = {}
        for endpoint in endpoints:
            table = patterns if "{" in endpoint.path else self._static
            table.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        self._dynamic = [(_compile(path), methods) for path, methods in patterns.items()]

    def resolve(self, path: str) -> tuple[dict[str, Endpoint], dict[str, str]] | None:
        methods = self._static.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self._dynamic:
            found = pattern.fullmatch(path)
            if found:
                return methods, found.groupdict()
        return None


def _compile(path: str) -> re.Pattern[str]:
    """An aiohttp route pattern (``/models/{model_id:.+}``) as a regular expression."""
    regex, position = "", 0
    for placeholder in _PLACEHOLDER.finditer(path):
        regex += re.escape(path[position : placeholder.start()])
        name, expression = placeholder.group(1), placeholder.group(2) or r"[^{}/]+"
        regex += f"(?P<{name}>{expression})"
        position = placeholder.end()
    return re.compile(regex + re.escape(path[position:]))


# --- the pipeline ---------------------------------------------------------------------------


class _Pipeline:
    def __init__(
        self, mock: MockKind, settings: MockSettings, state: MockState, log: Log | None
    ) -> None:
        self.kind, self.settings, self.state, self.log = mock, settings, state, log
        self.table = EndpointTable(mock.endpoints)
        self.key = settings.api_key.encode() if settings.api_key is not None else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            body, too_large = b"", True
        else:
            too_large = False
        call = Call(
            request.method, request.path, {}, request.query, request.headers, body,
            self.settings, strict_json.parse_body(body),
        )
        entry = self.state.journal.record(call)
        try:
            if too_large:
                reply = self.kind.error(413, f"request body larger than {MAX_BODY} bytes")
                return await self._transmit(request, reply, None, entry, self.kind.stream_error)
            return await self._respond(request, call, entry)
        finally:
            self.state.journal.finish(entry)
            if self.log is not None:
                self.log(_log_line(self.kind.name, entry, started))

    async def _respond(
        self, request: web.Request, call: Call, entry: JournalEntry
    ) -> web.StreamResponse:
        found = self.table.resolve(call.path)
        if found is not None:
            call.match_info = found[1]
        stream_error = self.kind.stream_error
        script = self.state.scripts.match(call) if self.state.scripts else None
        if script is not None and script.response is not None:
            return await self._transmit(request, script.response, None, entry, stream_error)
        if script is not None and script.reply is not None:
            call.scripted_reply = script.reply
        fault = script.fault if script is not None else None
        if fault is not None and fault.kind in fault_spec.REPLACING:
            reply = fault_spec.fault_reply(fault, self.kind, call)
            return await self._transmit(request, reply, fault, entry, stream_error)
        reply, endpoint = self._dispatch(call, None if found is None else found[0])
        breaks_stream = fault is not None and fault.kind == "stream_error"
        if breaks_stream and not isinstance(reply, StreamReply):
            reply = self.kind.error(500, fault.message)  # no stream to break: a plain error
        if endpoint is not None and endpoint.stream_error is not None:
            stream_error = endpoint.stream_error
        latency = self.settings.latency if call.generated else 0.0
        if latency and not await transmit.pause(request, latency):
            entry.outcome = "client_disconnected"
            return web.Response(status=204)
        return await self._transmit(request, reply, fault, entry, stream_error)

    async def _transmit(
        self, request: web.Request, reply: Reply | None, fault: fault_spec.Fault | None,
        entry: JournalEntry, stream_error: Callable[[str], bytes],
    ) -> web.StreamResponse:
        try:
            return await transmit.transmit(request, reply, fault, entry, stream_error)
        except Exception as problem:
            if entry.status is not None:  # the headers are out: nothing sensible left to send
                raise
            logger.exception("mock %s could not send its reply", self.kind.name)
            error = self._internal_error(problem)
            return await transmit.transmit(request, error, None, entry, stream_error)

    def _dispatch(
        self, call: Call, methods: dict[str, Endpoint] | None
    ) -> tuple[Reply, Endpoint | None]:
        if methods is None:
            return self._run(self.kind.not_found, call), None
        endpoint = methods.get(call.method)
        if endpoint is None and call.method == "HEAD":
            endpoint = methods.get("GET")
        if endpoint is None:
            allowed = ", ".join(sorted({*methods, *(("HEAD",) if "GET" in methods else ())}))
            message = f"Method {call.method} is not allowed on {call.path}; use {allowed}"
            reply = self._run(lambda c: self.kind.error(405, message), call)
            reply.headers["Allow"] = allowed
            return reply, None
        if self.key is not None and not endpoint.public and not self._authorized(call.headers):
            return self._run(self.kind.unauthorized, call), endpoint
        return self._run(endpoint.handler, call), endpoint

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        assert self.key is not None
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.key):
            return True
        presented = headers.get("X-Api-Key") if self.kind.x_api_key else None
        return presented is not None and hmac.compare_digest(presented.encode(), self.key)

    def _run(self, handler: Callable[[Call], Reply], call: Call) -> Reply:
        try:
            reply = handler(call)
            if not isinstance(reply, _REPLY_TYPES):
                raise TypeError(f"handler returned {type(reply).__name__}, not a Reply")
            return reply
        except Exception as problem:
            logger.exception("mock %s failed on %s %s", self.kind.name, call.method, call.path)
            return self._internal_error(problem)

    def _internal_error(self, problem: Exception) -> Reply:
        message = f"mock internal error: {type(problem).__name__}: {problem}"
        try:
            reply = self.kind.error(500, message)
            if isinstance(reply, _REPLY_TYPES):
                return reply
        except Exception:
            logger.exception("mock %s: its error handler failed too", self.kind.name)
        return JsonReply(500, {"error": message})


def _log_line(name: str, entry: JournalEntry, started: float) -> str:
    """One line per request; never header values or the query string (credentials live there)."""
    milliseconds = (time.perf_counter() - started) * 1000
    status = "-" if entry.status is None else str(entry.status)
    line = f"{name} {entry.method} {entry.path} {status} {milliseconds:.0f}ms"
    return line if entry.outcome == "completed" else f"{line} {entry.outcome}"


async def _control_handler(request: web.Request) -> web.Response:
    status, result = await control_api.respond(
        request.app[STATE], request.method, request.path, request.query, await request.read()
    )
    return web.Response(
        body=json.dumps(result).encode(), status=status, content_type="application/json"
    )


def mock_app(
    name: str, settings: MockSettings = DEFAULT_SETTINGS, *, log: Log | None = None
) -> web.Application:
    """The aiohttp application of mock ``name``; ``log`` receives one line per request."""
    mock = kind(name)
    if not settings.models:
        raise ValueError("a mock needs at least one model")
    state = MockState(mock, settings)
    pipeline = _Pipeline(mock, settings, state, log)
    app = web.Application(client_max_size=MAX_BODY)
    app[STATE] = state
    app.router.add_route("*", control_api.CONTROL_PREFIX, _control_handler)
    app.router.add_route("*", control_api.CONTROL_PREFIX + "/{tail:.*}", _control_handler)
    app.router.add_route("*", "/{tail:.*}", pipeline.handle)
    return app


# --- running mocks --------------------------------------------------------------------------


def make_settings(
    api_key: str | None = None,
    models: tuple[str, ...] | list[str] | str | None = None,
    latency: float = 0.0,
) -> MockSettings:
    """``MockSettings`` from friendly arguments (a single model name, a list, None = default)."""
    if models is None:
        models = DEFAULT_SETTINGS.models
    elif isinstance(models, str):
        models = (models,)
    if latency < 0:
        raise ValueError("latency must be >= 0")
    return MockSettings(api_key=api_key, models=tuple(models), latency=float(latency))


class _Mock:
    """What both ways of running mock ``name`` share. Options: ``host`` ("127.0.0.1"), ``port``
    (0: ephemeral), ``log`` (one line per request) and the settings ``api_key``, ``models`` (a
    name or a sequence) and ``latency`` (seconds)."""

    def __init__(
        self,
        name: str,
        server: type[AsyncServer] | type[ThreadedServer],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log: Log | None = None,
        **settings: Any,
    ) -> None:
        self.name = name
        self.kind = kind(name)
        self.settings = make_settings(**settings)
        self._server = server(functools.partial(mock_app, name, self.settings, log=log), host, port)


class MockServer(_Mock):
    """A mock in the running event loop: ``async with MockServer("ollama") as m: m.url``.

    ``m.control`` works in-process (no HTTP: a blocking HTTP call would stall this very loop);
    use ``await m.wait(entry_id)`` to wait for a request to end.
    """

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, AsyncServer, **options)
        self.control: MockControl | None = None

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def state(self) -> MockState:
        return self._server.app[STATE]

    async def wait(self, entry_id: int, timeout: float = 5.0) -> dict[str, Any]:
        entry = await self.state.journal.wait(entry_id, timeout)
        if entry is None:
            raise TimeoutError(f"request {entry_id} has not ended within {timeout:g}s")
        return entry.to_json()

    async def __aenter__(self) -> MockServer:
        await self._server.__aenter__()
        self.control = MockControl.in_process(self.url, self.state)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__(*exc)


class RunningMock(_Mock):
    """A mock served from a background thread, started at once; a context manager that stops it
    on exit: ``with run_mock("openai", api_key="k") as mock: mock.url, mock.control.journal()``.
    """

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, ThreadedServer, **options)
        self._server.start()
        self.url = self._server.url
        self.control = MockControl(self.url)

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> RunningMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RunningMock {self.name} at {self.url}>"


run_mock = RunningMock  # the name reads well at call sites: ``with run_mock("ollama") as mock``


def _print_line(line: str) -> None:
    print(line, flush=True)


def serve_mocks(
    names: list[str],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    api_key: str | None = None,
    models: tuple[str, ...] | list[str] | str | None = None,
    latency: float = 0.0,
    log: Log | None = _print_line,
    announce: Callable[[str, str], None] | None = None,
) -> None:
    """Serve mocks in the foreground until Ctrl-C (the ``proxyproof mock`` command).

    Each mock listens on its kind's default port, or on ``port``, ``port + 1``, ... in the order
    given (``port=0``: ephemeral ports). ``"all"`` means every mock. Prints ``<name>: <url>``
    per mock and then one line per request.
    """
    expanded = list(dict.fromkeys(
        one for name in names for one in (KIND_NAMES if name == "all" else (name,))
    ))
    if not expanded:
        raise ValueError("name at least one mock (or 'all')")
    for name in expanded:
        kind(name)  # fail early on an unknown name
    settings = make_settings(api_key=api_key, models=models, latency=latency)
    apps = []
    for offset, name in enumerate(expanded):
        if port is None:
            listen = kind(name).default_port
        elif port == 0:
            listen = 0  # every mock on its own ephemeral port
        else:
            listen = port + offset
        apps.append((name, functools.partial(mock_app, name, settings, log=log), host, listen))
    if announce is None:
        serve_forever(apps)  # with its own "<name>: <url>" lines
    else:
        serve_forever(apps, announce)
