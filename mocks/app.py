"""Serving the mocks: the aiohttp application of one mock, and ways to run it.

``mock_app`` puts the control API (``control_api``) under ``/__mock__`` and every other path
through the mock's request pipeline (``pipeline``).

Ways to run a mock: ``mock_app`` (the application), ``MockServer`` (``async with``, in the
running loop), ``run_mock`` (a background thread, for synchronous code and pytest) and
``serve_mocks`` (foreground, for the ``proxyproof mock`` command).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from proxyproof.serving import AsyncServer, ThreadedServer, serve_forever

from . import KIND_NAMES, control_api, control_auth, exposure, guard, kind, strict_json
from .base import JOURNAL_BODY_BYTES, JOURNAL_ENTRIES, NOT_JSON, MockSettings
from .cassette_options import CassetteOptions
from .control import MockControl
from .peers import Peers
from .pipeline import MAX_BODY, Log, Pipeline
from .sharing import Sharing
from .state import MockState

STATE = web.AppKey("mock_state", MockState)
PEERS = web.AppKey("mock_peers", Peers)
DEFAULT_SETTINGS = MockSettings()
_JSON = "application/json"
_JOURNAL_PATH = control_api.BY_NAME["journal"].url_path()
_BATCH = 8  # journal entries encoded per worker-thread call


def _encode(result: Any) -> bytes:
    return json.dumps(result, separators=(",", ":")).encode()


async def _control_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not control_auth.authorized(state.settings.control_token, request.headers):
        body = _encode({"error": control_auth.REFUSAL})
        return web.Response(body=body, status=401, content_type=_JSON,
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        payload = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(body=_encode({"error": f"control body larger than {MAX_BODY} bytes"}),
                            status=413, content_type=_JSON)
    state.sync()
    peers = request.app.get(PEERS)
    if peers is not None and not (payload.strip() and strict_json.parse_body(payload) is NOT_JSON):
        if request.method == "GET" and request.path.rstrip("/") == _JOURNAL_PATH:
            status, result = await peers.journal(request.query)
            body = await asyncio.to_thread(_encode, result)  # many workers' entries at once
            return web.Response(body=body, status=status, content_type=_JSON)
        answered = await peers.answer(request.method, request.path, request.query)
        if answered is not None:
            return web.Response(body=_encode(answered[1]), status=answered[0],
                                content_type=_JSON)
    if request.method == "GET" and request.path.rstrip("/") == _JOURNAL_PATH:
        return await _journal_listing(request, state, payload)
    status, result = await control_api.respond(
        state, request.method, request.path, request.query, payload
    )
    return web.Response(body=_encode(result), status=status, content_type=_JSON)


async def _journal_listing(
    request: web.Request, state: MockState, payload: bytes
) -> web.StreamResponse:
    """``GET /__mock__/journal``, streamed a few entries at a time, each encoded in a worker
    thread: the loop serves every mock of this process, and ``json.dumps`` holds the GIL for a
    whole document (a 389 MB journal once froze all mocks for 5.6 s)."""
    if payload.strip() and strict_json.parse_body(payload) is NOT_JSON:
        return web.Response(body=_encode({"error": "the control API takes a JSON body"}),
                            status=400, content_type=_JSON)
    try:
        entries = control_api.journal_selection(state, request.query)
    except control_api.ControlError as problem:
        return web.Response(body=_encode({"error": problem.message}), status=problem.status,
                            content_type=_JSON)
    secret = state.settings.control_token
    response = web.StreamResponse(headers={"Content-Type": _JSON})
    await response.prepare(request)
    await response.write(b'{"requests":[')
    for start in range(0, len(entries), _BATCH):
        batch = entries[start : start + _BATCH]
        chunk = await asyncio.to_thread(_encode_entries, batch, secret)
        await response.write(chunk if start == 0 else b"," + chunk)
    await response.write(b'],"dropped":%d}' % state.journal.dropped)
    await response.write_eof()
    return response


def _encode_entries(entries: list[Any], secret: str | None) -> bytes:
    """Entries as comma-separated JSON; one ``dumps`` each, so the GIL changes hands between."""
    return b",".join(_encode(entry.to_json(secret)) for entry in entries)


def mock_app(
    name: str, settings: MockSettings = DEFAULT_SETTINGS, *, log: Log | None = None,
    cassettes: CassetteOptions | None = None, scripts: Sequence[Any] = (),
    sharing: Sharing | None = None,
) -> web.Application:
    """The aiohttp application of mock ``name``; ``log`` receives one line per request.
    ``cassettes``: record or replay (``cassette_options``); ``scripts``: control-API scripts
    it starts with (``stub_files``); ``sharing``: built in a worker process of a mock served
    by several (``serve_mocks(workers=N)``), the state its workers share."""
    mock = kind(name)
    if not settings.models:
        raise ValueError("a mock needs at least one model")
    worker = None
    if sharing is not None:
        from proxyproof.workers import current

        worker = (current() or (1, 1))[0]
    state = MockState(mock, settings, sharing=sharing, worker=worker)
    state.preload_scripts(scripts)
    source = cassettes.source(mock, log) if cassettes is not None else None
    pipeline = Pipeline(mock, settings, state, log, source)
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[guard.middleware(mock)],
        # The body as sent: the real servers do not inflate it (gin, axum: compressed bytes are
        # not JSON) or refuse it (cpp-httplib without zlib), and a gzip bomb stays 64 MiB.
        handler_args={"auto_decompress": False},
    )
    app[STATE] = state
    if sharing is not None and worker is not None:
        peers = Peers(state, sharing, worker)
        app[PEERS] = peers
        app.cleanup_ctx.append(peers.context)
    if hasattr(source, "session_context"):  # the recorder's client to the real server
        app.cleanup_ctx.append(source.session_context)
    app.router.add_route("*", control_api.CONTROL_PREFIX, _control_handler)
    app.router.add_route("*", control_api.CONTROL_PREFIX + r"/{tail:[\s\S]*}", _control_handler)
    app.router.add_route("*", r"/{tail:[\s\S]*}", pipeline.handle)
    return app


# --- running mocks --------------------------------------------------------------------------


def make_settings(
    api_key: str | None = None,
    models: tuple[str, ...] | list[str] | str | None = None,
    latency: float = 0.0,
    journal_entries: int = JOURNAL_ENTRIES,
    journal_body_bytes: int = JOURNAL_BODY_BYTES,
    control_token: str | None = None,
) -> MockSettings:
    """``MockSettings`` from friendly arguments (a single model name, a list, None = default)."""
    if models is None:
        models = DEFAULT_SETTINGS.models
    elif isinstance(models, str):
        models = (models,)
    if latency < 0:
        raise ValueError("latency must be >= 0")
    if journal_entries < 1:
        raise ValueError("journal_entries must be >= 1")
    if journal_body_bytes < 0:
        raise ValueError("journal_body_bytes must be >= 0")
    if control_token is not None and not control_token.strip():
        raise ValueError("control_token must not be empty")
    return MockSettings(
        api_key=api_key, models=tuple(models), latency=float(latency),
        journal_entries=int(journal_entries), journal_body_bytes=int(journal_body_bytes),
        control_token=control_token,
    )


def _warn(host: str, url: str, settings: MockSettings) -> None:
    port = url.rsplit(":", 1)[-1]
    exposure.warn_if_exposed(host, port, token_set=settings.control_token is not None)


def _scripts(given: Any) -> list[Any]:
    """``scripts=``: a directory (or file) of scripts, or the scripts themselves."""
    if given is None:
        return []
    if isinstance(given, str | os.PathLike):
        from pathlib import Path

        from .stub_files import load_scripts

        return load_scripts(Path(given))
    return list(given)


class _Mock:
    """What both ways of running mock ``name`` share. Options: ``host`` ("127.0.0.1"), ``port``
    (0: ephemeral), ``log`` (one line per request) and the settings ``api_key``, ``models`` (a
    name or a sequence), ``latency`` (seconds), ``journal_entries`` (1000),
    ``journal_body_bytes`` (1 MiB) and ``control_token`` (None: the control API is open).
    Cassettes (docs/cassettes.md): ``record_from`` + ``cassettes`` (a directory) records,
    ``replay`` (a directory) replays, with ``strict``, ``replay_timing``, ``ignore_fields`` and
    ``redact_headers`` / ``redact_query`` / ``redact_fields``; ``scripts``: a directory of
    control-API scripts (or a list of them) the mock starts with."""

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
        self.host = host
        self.cassettes = CassetteOptions.from_settings(settings)
        scripts = _scripts(settings.pop("scripts", None))
        self.settings = make_settings(**settings)
        self._server = server(functools.partial(mock_app, name, self.settings, log=log,
                                                cassettes=self.cassettes, scripts=scripts),
                              host, port)


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
        _warn(self.host, self.url, self.settings)
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
        _warn(self.host, self.url, self.settings)
        self.control = MockControl(self.url, token=self.settings.control_token)

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
    journal_entries: int = JOURNAL_ENTRIES,
    journal_body_bytes: int = JOURNAL_BODY_BYTES,
    control_token: str | None = None,
    log: Log | None = _print_line,
    announce: Callable[[str, str], None] | None = None,
    cassettes: CassetteOptions | None = None,
    scripts: Sequence[Any] = (),
    workers: int = 1,
) -> int:
    """Serve mocks in the foreground until Ctrl-C (the ``proxyproof mock`` command); 0, or 1
    when a worker process failed.

    Each mock listens on its kind's default port, or on ``port``, ``port + 1``, ... in the order
    given (``port=0``: ephemeral ports). ``"all"`` means every mock. Prints ``<name>: <url>``
    per mock and then one line per request; a mock on a non-loopback ``host`` also prints a
    warning to stderr. ``control_token`` defaults to ``$PROXYPROOF_CONTROL_TOKEN``.
    ``cassettes`` and ``scripts`` as for ``mock_app`` (checked already: ``CassetteOptions``,
    ``stub_files.load_scripts``). ``workers``: serve each mock from that many processes on its
    one port (``proxyproof.workers``), sharing scripts, faults and models (``sharing``), the
    journal kept per worker and listed merged (``peers``); not while recording.
    """
    expanded = list(dict.fromkeys(
        one for name in names for one in (KIND_NAMES if name == "all" else (name,))
    ))
    if not expanded:
        raise ValueError("name at least one mock (or 'all')")
    for name in expanded:
        kind(name)  # fail early on an unknown name
    if control_token is None:
        control_token = os.environ.get(control_auth.ENV_VAR) or None
    settings = make_settings(
        api_key=api_key, models=models, latency=latency, journal_entries=journal_entries,
        journal_body_bytes=journal_body_bytes, control_token=control_token,
    )
    if workers > 1 and cassettes is not None and cassettes.recording:
        raise ValueError("--record-from writes cassettes from one process: leave out --workers")
    shared = {name: Sharing(name, workers, scripts, settings.models)
              for name in expanded} if workers > 1 else {}
    apps = []
    for offset, name in enumerate(expanded):
        if port is None:
            listen = kind(name).default_port
        elif port == 0:
            listen = 0  # every mock on its own ephemeral port
        else:
            listen = port + offset
        apps.append((name, functools.partial(mock_app, name, settings, log=log,
                                             cassettes=cassettes, scripts=scripts,
                                             sharing=shared.get(name)), host, listen))

    def announced(name: str, url: str) -> None:
        if announce is None:
            print(f"{name}: {url}", flush=True)
        else:
            announce(name, url)
        _warn(host, url, settings)

    if not shared:
        serve_forever(apps, announced)
        return 0
    from proxyproof.workers import serve_workers

    try:
        return serve_workers(apps, workers, announced)
    finally:
        for sharing in shared.values():
            sharing.remove_directory()
