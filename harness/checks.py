"""Comparing one exchange with one flavour of a case's expectation: each function returns the
problems it found, as readable lines (empty when everything holds)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from proxyproof import fixtures

from . import oracle
from .catalogue.model import Case, Expectation
from .http import Response
from .streams import chunk_text, finish_reasons, parse_sse

REPLY_SCHEMA = {"llm/v1/chat": "ChatResponse", "llm/v1/completions": "CompletionsResponse"}
CHUNK_SCHEMA = {"llm/v1/chat": "ChatStreamChunk", "llm/v1/completions": "CompletionsStreamChunk"}
UPSTREAM_SCHEMA = {
    ("raw", "llm/v1/chat"): "RawRequest", ("raw", "llm/v1/completions"): "RawRequest",
    ("ollama", "llm/v1/chat"): "OllamaChatRequest",
    ("ollama", "llm/v1/completions"): "OllamaGenerateRequest",
    ("openai", "llm/v1/chat"): "OpenAIChatRequest",
    ("openai", "llm/v1/completions"): "OpenAICompletionRequest",
}  # fmt: skip
KONG_UNSUPPORTED = {"error": True, "message": "empty or unsupported transformer response"}

# Sends a journaled upstream request to the mock again; ``stream`` False asks for one JSON reply.
Replay = Callable[[Mapping[str, Any], bool | None], Response]


@dataclass(frozen=True)
class Exchange:
    """Everything one case produced."""

    case: Case
    setup: oracle.RouteSetup
    upstream_url: str
    request_body: Any  # the client's JSON body (None when it sent raw text)
    response: Response
    journal: list[dict[str, Any]]
    replay: Replay


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def short(value: Any, width: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def schema_problem(name: str, instance: Any) -> str | None:
    try:
        fixtures.validate(name, instance)
    except jsonschema.ValidationError as error:
        return f"does not match {name}: {error.message}"
    return None


def _subset(expected: Any, actual: Any, where: str) -> list[str]:
    """``expected`` must be contained in ``actual`` (dicts by key, everything else equal)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {short(actual)}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing, expected {short(value)}")
            else:
                problems += _subset(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for p in _subset(e, a, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: {short(actual)}, expected {short(expected)}"]


def _headers(expected: Mapping[str, Any], actual: Mapping[str, str], where: str) -> list[str]:
    lowered = {k.lower(): v for k, v in actual.items()}
    problems = []
    for name, want in expected.items():
        got = lowered.get(name.lower())
        if want is None and got is not None:
            problems.append(f"{where} header {name}: present, expected absent")
        elif want == "*" and got is None:
            problems.append(f"{where} header {name}: absent, expected present")
        elif want not in (None, "*") and got != want:
            problems.append(f"{where} header {name}: {got!r}, expected {want!r}")
    return problems


# ---------------------------------------------------------------------------- upstream side


def upstream_problems(ex: Exchange, want: Expectation, kong: bool) -> list[str]:
    count = want.upstream_count
    if count is None:
        count = 1 if ex.case.upstream == "mock" or ex.case.upstream.startswith("/") else 0
    if len(ex.journal) != count:
        return [f"the upstream received {len(ex.journal)} request(s), expected {count}"]
    if count != 1:
        return []
    got = ex.journal[0]
    spec = want.upstream
    problems = []
    method = spec.get("method", "POST")
    path = spec.get("path", urlsplit(ex.upstream_url).path or "/")
    if (got["method"], got["path"]) != (method, path):
        problems.append(f"upstream got {got['method']} {got['path']}, expected {method} {path}")
    headers = dict(spec.get("headers") or {})
    query = dict(spec.get("query") or {})
    body = got.get("body")
    if want.oracle and isinstance(ex.request_body, dict):
        auth_headers, auth_query = oracle.expected_auth(
            ex.setup, ex.case.request.headers, ex.case.request.query)
        headers = {**auth_headers, **headers}
        query = {**auth_query, **query}
        expected = oracle.expected_upstream_body(ex.setup, ex.request_body, kong)
        if body != expected:
            problems.append(f"upstream body {short(body, 500)}, expected {short(expected, 500)}")
        schema = UPSTREAM_SCHEMA.get((ex.setup.llama2_format, ex.setup.route_type))
        problem = schema and isinstance(body, dict) and schema_problem(schema, body)
        if problem:
            problems.append(f"upstream body {problem}")
    problems += _headers(headers, got.get("headers") or {}, "upstream")
    received_query = got.get("query") or {}
    for name, value in query.items():
        if received_query.get(name) != value:
            problems.append(f"upstream query {name}: {received_query.get(name)!r}, "
                            f"expected {value!r}")
    if "body_contains" in spec:
        problems += _subset(spec["body_contains"], body, "upstream body")
    for name in spec.get("body_absent") or []:
        if isinstance(body, dict) and name in body:
            problems.append(f"upstream body has {name!r}, expected it absent")
    return problems


# ---------------------------------------------------------------------------- client side


def client_problems(ex: Exchange, want: Expectation, kong: bool) -> list[str]:
    response = ex.response
    problems = []
    oracle_reply = want.oracle and len(ex.journal) == 1 and isinstance(ex.request_body, dict)
    status = want.status if want.status is not None else (None if oracle_reply else 200)
    allowed = status if isinstance(status, list) else [status]
    if status is not None and response.status not in allowed:
        problems.append(f"status {response.status}, expected {status}: "
                        f"{short(response.body.decode('utf-8', 'replace'))}")
        return problems  # the rest would only repeat it
    body = _json(response.body)
    if want.error is not None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) and isinstance(
            body.get("error"), dict) else None
        if message != want.error:
            problems.append(f"error message {message!r}, expected {want.error!r}")
    if want.message is not None and (not isinstance(body, dict)
                                     or body.get("message") != want.message):
        problems.append(f"body {short(response.body.decode('utf-8', 'replace'))}, expected "
                        f"{{\"message\": {want.message!r}, ...}}")
    if want.body is not None and body != want.body:
        problems.append(f"body {short(body)}, expected {short(want.body)}")
    if want.body_text is not None and response.body.decode("utf-8", "replace") != want.body_text:
        problems.append(f"body {short(response.body.decode('utf-8', 'replace'))!r}, "
                        f"expected {want.body_text!r}")
    if want.body_contains is not None:
        problems += _subset(want.body_contains, body, "body")
    model = ex.setup.model or (ex.request_body or {}).get("model") if isinstance(
        ex.request_body, dict) else ex.setup.model
    wanted = {name: value.replace("{model}", str(model)) if isinstance(value, str) else value
              for name, value in want.headers.items()}
    problems += _headers(wanted, response.headers, "response")
    streaming = isinstance(ex.request_body, dict) and oracle.streams(ex.request_body, kong)
    if want.schema and not streaming:
        problem = schema_problem(want.schema, body)
        if problem:
            problems.append(f"body {problem}")
    if want.stream:
        problems += stream_problems(ex, want.stream, kong)
    if oracle_reply:
        problems += (oracle_stream_problems(ex, kong) if streaming
                     else oracle_reply_problems(ex, kong))
    return problems


def oracle_reply_problems(ex: Exchange, kong: bool) -> list[str]:
    upstream = ex.replay(ex.journal[0], None)
    if upstream.status != 200:
        return [f"replaying the upstream request gave {upstream.status}"]
    expected = oracle.expected_reply(ex.setup, upstream.body, kong)
    problems = oracle.reply_deviations(expected, ex.response.status, ex.response.body)
    if not problems and not kong and ex.response.status == 200:
        problem = schema_problem(REPLY_SCHEMA[ex.setup.route_type], _json(ex.response.body))
        if problem:
            problems.append(f"body {problem}")
    return problems


def stream_problems(ex: Exchange, spec: Mapping[str, Any], kong: bool) -> list[str]:
    """A stream's shape: ``done`` ([DONE] with its blank line), ``error_event`` (an
    ``{"error": {...}}`` event), ``empty`` (no events), ``complete`` (the body ended cleanly)."""
    stream = parse_sse(ex.response.body)
    events = stream.json_events()
    problems = []
    if "done" in spec:
        ended = stream.done and (stream.done_terminated or kong)
        if ended != spec["done"]:
            problems.append("the stream " + ("does not end with" if spec["done"] else "ends with")
                            + " data: [DONE]" + ("" if kong else " and a blank line"))
    if "error_event" in spec:
        has = any(isinstance(e, dict) and isinstance(e.get("error"), dict) for e in events)
        if has != spec["error_event"]:
            problems.append("the stream " + ("has no" if spec["error_event"] else "has an")
                            + ' {"error": {...}} event')
    if spec.get("empty") and (stream.payloads or stream.done):
        problems.append(f"the stream has {len(stream.payloads)} event(s), expected none")
    if "complete" in spec and ex.response.complete != spec["complete"]:
        problems.append("the connection " + ("was cut" if spec["complete"] else "ended cleanly"))
    return problems


def _non_stream_text(ex: Exchange) -> tuple[str | None, str | None]:
    """The text and finish reason of the same upstream request asked for without streaming."""
    upstream = ex.replay(ex.journal[0], False)
    if upstream.status != 200:
        return None, None
    expected = oracle.expected_reply(ex.setup, upstream.body, kong_compat=False)
    return expected.text, expected.finish_reason


def oracle_stream_problems(ex: Exchange, kong: bool) -> list[str]:
    response = ex.response
    if not (response.header("Content-Type") or "").startswith("text/event-stream"):
        return [f"Content-Type {response.header('Content-Type')!r}, expected text/event-stream"]
    stream = parse_sse(response.body)
    events = stream.json_events()
    fmt = ex.setup.llama2_format
    if kong and fmt == "raw":  # Kong has no raw stream transformer
        if events in ([], [KONG_UNSUPPORTED]) and not stream.done:
            return []
        return [f"expected Kong's empty raw stream, got {len(events)} event(s)"]
    problems = []
    if not stream.done:
        problems.append("the stream does not end with data: [DONE]")
    elif not stream.done_terminated and not kong:
        problems.append("data: [DONE] is not followed by a blank line")
    if stream.after_done:
        problems.append(f"{len(stream.after_done)} event(s) after [DONE]")
    if fmt == "openai":  # the upstream's events pass through untouched
        upstream = parse_sse(ex.replay(ex.journal[0], None).body)
        if stream.payloads != upstream.payloads:
            problems.append(f"events differ from the upstream's: {short(stream.payloads)} vs "
                            f"{short(upstream.payloads)}")
        return problems
    text, finish = _non_stream_text(ex)
    got = "".join(chunk_text(event) for event in events)
    if got != text:
        problems.append(f"streamed text {short(got)!r}, expected {short(text)!r}")
    if not kong:
        schema = CHUNK_SCHEMA[ex.setup.route_type]
        bad = next((p for p in (schema_problem(schema, e) for e in events) if p), None)
        if bad:
            problems.append(f"a chunk {bad}")
        reasons = finish_reasons(events)
        if not reasons:
            problems.append("no chunk carries a finish_reason")
        elif finish is not None and reasons[-1] != finish:
            problems.append(f"finish_reason {reasons[-1]!r}, expected {finish!r}")
    return problems


def problems(ex: Exchange, want: Expectation, kong: bool) -> list[str]:
    return upstream_problems(ex, want, kong) + client_problems(ex, want, kong)
