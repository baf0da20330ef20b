"""``MockControl``: a synchronous Python client of a mock's control API (``control_api``).

Every call names an endpoint of ``control_api.CONTROL_ENDPOINTS``, whose method and path it sends;
no path is spelled out here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from . import control_api
from .base import NOT_JSON
from .state import MockState


class MockControl:
    """A synchronous client of a mock's control API.

    ``MockControl(url)`` talks HTTP (standard library only, no proxies). ``MockServer`` hands out
    an in-process one instead: calling HTTP from inside the mock's own event loop would block the
    loop that has to answer. Errors: 400 raises ``ValueError``, 404 ``LookupError``, a ``wait``
    that times out ``TimeoutError``.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        """``url``: the mock's base URL; ``timeout``: seconds per HTTP call (``wait`` adds its
        own); ``token``: the mock's control token, if it has one."""
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._token = token
        self._state: MockState | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def in_process(cls, url: str, state: MockState) -> MockControl:
        """A client that answers from ``state`` directly, for code in the mock's own loop."""
        control = cls(url)
        control._state = state
        return control

    def _call(
        self, name: str, *, payload: Any = None, query: Mapping[str, str] | None = None,
        timeout: float | None = None, **params: object,
    ) -> Any:
        endpoint = control_api.BY_NAME[name]
        path = endpoint.url_path(**params)
        query = dict(query or {})
        if self._state is not None:
            status, body = control_api.handle(
                self._state, endpoint.method, path, query,
                NOT_JSON if payload is None else json.loads(json.dumps(payload)),
            )
        else:
            status, body = self._http(endpoint.method, path, payload, query, timeout)
        if status == 400:
            raise ValueError(body.get("error", body))
        if status == 404:
            raise LookupError(body.get("error", body))
        if status == 408:
            raise TimeoutError(body.get("error", body))
        if status == 401:
            raise PermissionError(body.get("error", body))
        if status >= 300:
            raise RuntimeError(f"control API answered {status}: {body}")
        return body

    def _http(
        self, method: str, path: str, payload: Any, query: Mapping[str, str],
        timeout: float | None,
    ) -> tuple[int, Any]:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token is not None:
            request.add_header("Authorization", f"Bearer {self._token}")
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
        """The mock's kind, settings (never the key), endpoints, control endpoints and fault
        kinds with their parameters (``GET /__mock__/``)."""
        return self._call("describe")

    def journal(self, path: str | None = None, since: int = 0,
                contains: str | None = None) -> list[dict[str, Any]]:
        """Received requests, oldest first (control requests are not recorded).

        ``path``: only requests to exactly this path; ``since``: only entries with a greater id;
        ``contains``: only requests whose body holds this text.
        An entry holds ``id``, ``time``, ``method``, ``path``, ``query``, ``headers``, ``body``
        (parsed JSON, else the text), ``status``, ``outcome``, ``ended``, ``frames_sent`` and
        ``frame_times``.
        """
        query = {"since": str(since)}
        if path is not None:
            query["path"] = path
        if contains is not None:
            query["contains"] = contains
        return self._call("journal", query=query)["requests"]

    def entry(self, entry_id: int) -> dict[str, Any]:
        """One journal entry by id (``LookupError`` if unknown or cleared)."""
        return self._call("entry", id=entry_id)

    def clear_journal(self) -> None:
        """Forget the recorded requests; ids keep counting."""
        self._call("clear_journal")

    def wait(self, entry_id: int, timeout: float = 5.0) -> dict[str, Any]:
        """The entry once its request has ended.

        ``entry_id``: the request's journal id (one not yet assigned waits for it to arrive);
        ``timeout``: seconds to wait, at most 300 (``TimeoutError`` when it runs out). In
        process, only a request that has already ended can be returned: use
        ``await MockServer.wait(entry_id)`` to wait there.
        """
        if self._state is not None:
            try:
                entry: dict[str, Any] | None = self.entry(entry_id)
            except LookupError:
                entry = None
            if entry is not None and entry["ended"] is not None:
                return entry
            raise RuntimeError(
                "MockControl.wait cannot block the mock's own event loop; "
                "use `await server.wait(entry_id)` on the MockServer"
            )
        return self._call(
            "wait", id=entry_id, query={"timeout": str(timeout)}, timeout=timeout + 5
        )

    def script(
        self,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
        response: Mapping[str, Any] | None = None,
        reply: str | None = None,
        fault: Mapping[str, Any] | None = None,
    ) -> int:
        """Add a script and return its id. Give exactly one of ``response``, ``reply``, ``fault``.

        ``match``: which requests it applies to, every key optional: ``method``, ``path`` (exact,
        or a glob with ``*``), ``body_contains`` (a substring of the raw body), ``headers``
        (name -> exact value; names case-insensitive). None matches every request.
        ``times``: how many requests it applies to; None: all of them.
        ``response``: answer as is, before the API-key check: ``{"status", "json" | "body",
        "headers", "content_type"}``.
        ``reply``: text that replaces the generated reply; the server still answers in its own
        protocol (streamed or not, token counts from this text).
        ``fault``: ``{"kind": ..., <parameters>}``, a fault kind of ``fault_spec`` (see
        ``fault()``).

        Scripts are tried in the order they were added; the first that matches wins.
        ``ValueError`` names what is wrong with an invalid script.
        """
        spec: dict[str, Any] = {"match": dict(match or {})}
        if times is not None:
            spec["times"] = times
        for name, value in (("response", response), ("reply", reply), ("fault", fault)):
            if value is not None:
                spec[name] = value
        return self._call("add_script", payload=spec)["id"]

    def fault(
        self,
        kind: str,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
        **params: Any,
    ) -> int:
        """Add a fault script and return its id: ``fault("rate_limit", retry_after=2, times=1)``.

        ``kind`` and its ``params`` (defaults in brackets): ``status`` (status, json | body,
        headers, content_type), ``latency`` (seconds), ``chunk_delay`` (seconds),
        ``reset_before_headers``, ``reset_mid_stream`` (after_frames [1]), ``empty_response``,
        ``malformed_json``, ``truncated_stream`` (after_frames [1]), ``rate_limit`` (retry_after
        [1]), ``loading`` (estimated_time [20.0]), ``stream_error`` (after_frames [1], message).
        ``match`` and ``times`` as for ``script()``.
        """
        return self.script(match=match, times=times, fault={"kind": kind, **params})

    def scripts(self) -> list[dict[str, Any]]:
        """Every script with its ``id``, ``match``, ``times``, ``remaining`` (0 once used up),
        ``hits`` and action."""
        return self._call("scripts")["scripts"]

    def remove_script(self, script_id: int) -> None:
        """Remove one script by id (``LookupError`` if there is none)."""
        self._call("remove_script", id=script_id)

    def clear_scripts(self) -> None:
        """Remove every script."""
        self._call("clear_scripts")

    def reset(self) -> None:
        """Clear the journal and remove every script."""
        self._call("reset")
