"""The harness's HTTP client: synchronous, stdlib only, and deaf to ``*_proxy`` variables — the
harness talks to the gateway and the mocks it was given, never through a proxy of the environment."""

from __future__ import annotations

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
            return Response(reply.status, dict(reply.headers), reply.read())
    except urllib.error.HTTPError as error:  # a non-2xx status is an answer, not a failure
        with error:
            return Response(error.code, dict(error.headers), error.read())


def post_json(url: str, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return request("POST", url, json.dumps(payload).encode(), all_headers)
