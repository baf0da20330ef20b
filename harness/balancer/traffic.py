"""Sending a check's requests and finding where each went.

Every request carries a fresh token in its prompt; whichever format a target speaks, the prompt
reaches the upstream, so the upstreams' journals tell which targets each request was tried on,
in which order."""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..http import request
from .model import Check
from .upstreams import Arrival, Upstreams

CLIENT_TIMEOUT = 30.0
TOKEN = re.compile(r"ppb[0-9a-f]{16}")
SHOWN_BODY = 300  # bytes of a client reply kept as evidence


@dataclass(frozen=True)
class Sent:
    """One client request and the gateway's answer (status 0: no answer at all)."""

    token: str
    status: int
    body: str
    started: float
    ended: float
    headers: Mapping[str, str]


def new_token() -> str:
    return "ppb" + uuid.uuid4().hex[:16]


def chat_body(token: str, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user",
                                          "content": f"Say hello to balancer probe {token}."}]}
    if stream:
        body["stream"] = True
    return body


def tokens_in(text: str) -> list[str]:
    return TOKEN.findall(text)


def attempts_by_token(arrivals: Iterable[Arrival]) -> dict[str, list[Arrival]]:
    """Each token's arrivals at the upstreams, oldest first: the attempts made for it."""
    found: dict[str, list[Arrival]] = {}
    for arrival in sorted(arrivals, key=lambda a: a.time):
        for token in dict.fromkeys(tokens_in(arrival.text)):
            found.setdefault(token, []).append(arrival)
    return found


class Probe:
    """A check's handle on the run: send through its route, script its upstreams, read where
    requests went."""

    def __init__(self, check: Check, url: str, upstreams: Upstreams) -> None:
        self.check = check
        self.url = url
        self.upstreams = upstreams

    def upstream(self, role: str) -> Any:
        return self.upstreams[role]

    def send(self, headers: Mapping[str, str] | None = None, stream: bool = False) -> Sent:
        token = new_token()
        body = json.dumps(chat_body(token, stream)).encode()
        started = time.time()
        try:
            answer = request("POST", self.url, body,
                             {"Content-Type": "application/json", **(headers or {})},
                             timeout=CLIENT_TIMEOUT)
        except (OSError, http.client.HTTPException) as error:
            return Sent(token, 0, f"no answer: {error}", started, time.time(), {})
        return Sent(token, answer.status, answer.body[:SHOWN_BODY].decode("utf-8", "replace"),
                    started, time.time(), dict(answer.headers))

    def send_many(self, count: int, headers: Mapping[str, str] | None = None) -> list[Sent]:
        return [self.send(headers) for _ in range(count)]

    def arrivals(self) -> list[Arrival]:
        return self.upstreams.arrivals(self.check.roles)

    def attempts(self) -> dict[str, list[Arrival]]:
        return attempts_by_token(self.arrivals())
