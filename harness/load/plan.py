"""The plan of a load run: every request the load generators may send, by kind, as JSON.

Made once, by the process that started the mocks and loaded the gateway (``proxyproof load``,
or its ``--master``), after sending each catalogue case through the gateway alone: a case that
fails alone is left out (``proxyproof check`` is where to see why), and the status it answered
alone is no surprise under load. Load generators (Locust's processes, on this machine or others)
receive the plan and need nothing else: no catalogue, no mocks.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..catalogue.model import Case
from ..hostings import BY_KEY
from ..results import CaseResult
from ..runner import Binding, Prepared
from ..soak import HOSTILE as HOSTILE_REQUESTS
from ..soak import soak_cases
from .mix import HOSTILE, Mix

# What the oracle can check a sample of: its expectation is the oracle's alone (a fixed body or
# error text would not survive the marker a sample carries in its prompt).
_FIXED_REPLY = ("body", "body_text", "body_contains", "error", "message")


def kind_of(case: Case) -> str:
    base = f"{case.hosting} {case.route}"
    if case.expect.status not in (None, 200):
        return f"{base} error"
    body = case.request.body
    return f"{base} stream" if isinstance(body, dict) and body.get("stream") else base


def load_cases(cases: Iterable[Case], mix: Mix) -> list[Case]:
    """The catalogue cases a load can send concurrently (``soak_cases``), in the mix's
    hostings and routes."""
    hostings = set(mix.hostings_used())
    routes = {route for route, weight in mix.routes.items() if weight > 0}
    return [c for c in soak_cases(list(cases)) if c.hosting in hostings and c.route in routes]


def marker_field(case: Case) -> bool:
    """Whether a sample of ``case`` can carry its marker: the last chat message's text, or the
    completion prompt."""
    body = case.request.body
    if not isinstance(body, dict):
        return False
    if case.route == "chat":
        messages = body.get("messages")
        return (isinstance(messages, list) and bool(messages) and isinstance(messages[-1], dict)
                and isinstance(messages[-1].get("content"), str))
    return isinstance(body.get("prompt"), str)


def sampleable(case: Case, result: CaseResult) -> bool:
    want = case.expect
    return (result.outcome in ("pass", "deviation") and want.oracle and case.upstream == "mock"
            and case.request.raw_body is None and not kind_of(case).endswith(" error")
            and not any(getattr(want, name) is not None for name in _FIXED_REPLY)
            and marker_field(case))


@dataclass
class Plan:
    """JSON-able: ``proxy_url``, the mocks' URLs by mock kind, each kind's share and requests."""

    proxy_url: str
    mocks: dict[str, str]
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind → share, requests
    left_out: list[str] = field(default_factory=list)  # cases that failed alone

    def as_json(self) -> dict[str, Any]:
        return {"proxy_url": self.proxy_url, "mocks": self.mocks, "kinds": self.kinds,
                "left_out": self.left_out}


def _encoded(data: bytes | None) -> str:
    return base64.b64encode(data or b"").decode()


def _planned(ready: Prepared, binding: Binding, result: CaseResult,
             adapts: bool) -> dict[str, Any]:
    case = binding.case
    method, url, data, headers = ready.run.outgoing(case, ready.proxy_url, binding.path)
    split = urlsplit(url)
    allowed = [result.actual["status"]] if result.actual.get("status", 0) >= 500 else []
    planned: dict[str, Any] = {
        "binding": binding.id, "case": case.id, "kind": kind_of(case), "method": method,
        "path": split.path + (f"?{split.query}" if split.query else ""), "headers": headers,
        "body": _encoded(data), "allowed_5xx": allowed, "route": case.route,
        "mock": BY_KEY[case.hosting].mock, "sample": None,
    }
    if not adapts and sampleable(case, result):
        planned["sample"] = {"json": case.request.body, "target": binding.target}
    return planned


def build_plan(ready: Prepared, results: dict[str, CaseResult], mix: Mix,
               adapts: bool = False) -> Plan:
    """The plan from the prepared run and each binding's result when sent alone. ``adapts``:
    the gateway rewrites requests its own way (LiteLLM), so no sample can carry a marker."""
    plan = Plan(ready.proxy_url, {kind: mock.url for kind, mock in ready.run.mocks.items()})
    requests: dict[str, list[dict[str, Any]]] = {}
    for binding in ready.bindings:
        result = results[binding.id]
        if result.outcome not in ("pass", "deviation"):
            plan.left_out.append(binding.id)
            continue
        planned = _planned(ready, binding, result, adapts)
        requests.setdefault(planned["kind"], []).append(planned)
    if mix.hostile and ready.bindings:
        paths = sorted({binding.path for binding in ready.bindings})
        requests[HOSTILE] = [
            {"binding": f"hostile: {name}", "case": "", "kind": HOSTILE, "method": method,
             "path": paths[number % len(paths)], "headers": headers, "body": _encoded(body),
             "allowed_5xx": [], "route": "", "mock": "", "sample": None}
            for number, (name, method, headers, body) in enumerate(HOSTILE_REQUESTS)]
    shares = mix.weights(requests)
    plan.kinds = {kind: {"share": share, "requests": requests[kind]}
                  for kind, share in shares.items()}
    return plan
