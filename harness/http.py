"""The harness's HTTP client: synchronous, stdlib only, and deaf to ``*_proxy`` variables — the
harness talks to the gateway and the mocks it was given, never through the environment's proxy."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    complete: bool = True  # False: the connection ended before the body did

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as reply:
            return _read(reply.status, reply.headers, reply)
    except urllib.error.HTTPError as error:  # a non-2xx status is an answer, not a failure
        with error:
            return _read(error.code, error.headers, error)


def _read(status: int, headers: Any, stream: Any) -> Response:
    try:
        return Response(status, dict(headers), stream.read())
    except http.client.IncompleteRead as cut:
        return Response(status, dict(headers), cut.partial, complete=False)
    except (ConnectionError, http.client.HTTPException):
        return Response(status, dict(headers), b"", complete=False)


def post_json(url: str, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return request("POST", url, json.dumps(payload).encode(), all_headers)
