"""The seed scenario: the README's request, chat and completions, through a gateway to each
hosting's mock upstream, checked against the oracle and the OAS fixture."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from proxyproof import fixtures
from proxyproof.mocks.app import run_mock

from . import kong_config, oracle
from .gateway import Gateway
from .hostings import HOSTINGS, Hosting
from .http import Response, post_json, request
from .journal import replayed_request

SEED_CHAT = {
    "messages": [
        {"role": "system", "content": "You are a mathematician"},
        {"role": "user", "content": "What is 1+1?"},
    ]
}
SEED_COMPLETIONS = {"prompt": "What is 1+1?"}
SEED_CASES = (
    ("/llama2-chat", SEED_CHAT, "ChatResponse"),
    ("/llama2-completions", SEED_COMPLETIONS, "CompletionsResponse"),
)


@dataclass
class CaseResult:
    hosting: str
    llama2_format: str
    route_type: str
    upstream: str = ""  # what the upstream received, in short
    client: str = ""  # what the client got, in short
    deviations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # Kong's known quirks, expected in compat mode

    @property
    def conforms(self) -> bool:
        return not self.deviations


def _short(text: str | None, width: int = 40) -> str:
    text = "" if text is None else " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _client_text(response: Response) -> str | None:
    try:
        choice = response.json()["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return choice["message"].get("content") if "message" in choice else choice.get("text")


def check_exchange(
    target: oracle.RouteSetup,
    request_body: dict[str, Any],
    response: Response,
    journal: list[dict[str, Any]],
    replay: Callable[[dict[str, Any]], Response],
    response_schema: str,
    kong_compat: bool,
) -> tuple[str, list[str], list[str]]:
    """Compare one client exchange and the upstream traffic it caused with the oracle.

    Returns a summary of the upstream call, the deviations, and notes: in Kong-compatibility
    mode a reply that breaks the OpenAPI description is Kong's known behaviour, not a failure."""
    if len(journal) != 1:
        problem = f"upstream received {len(journal)} requests, expected 1"
        return f"{len(journal)} requests", [problem], []
    received = journal[0]
    deviations, notes = [], []
    wanted_path = urlsplit(target.options["upstream_url"]).path or "/"
    if (received["method"], received["path"]) != ("POST", wanted_path):
        deviations.append(f"upstream got {received['method']} {received['path']}, "
                          f"expected POST {wanted_path}")
    expected_body = oracle.expected_upstream_body(target, request_body, kong_compat)
    if received["body"] != expected_body:
        deviations.append(
            f"upstream body {json.dumps(received['body'])} differs from the expected "
            f"{json.dumps(expected_body)}"
        )
    upstream_reply = replay(received)
    if upstream_reply.status != 200:
        deviations.append(f"replaying the upstream request gave {upstream_reply.status}")
        return f"{received['method']} {received['path']}", deviations, notes
    expected = oracle.expected_reply(target, upstream_reply.body, kong_compat)
    if expected.status != 200:  # only Kong fails to read a real upstream's reply
        notes.append(f"Kong answers {expected.status} {expected.error!r}")
    deviations += oracle.reply_deviations(expected, response.status, response.body)
    if response.status == 200:
        try:
            fixtures.validate(response_schema, response.json())
        except (ValueError, jsonschema.ValidationError) as error:
            problem = f"response does not match {response_schema}: "
            problem += getattr(error, "message", str(error))
            (notes if kong_compat else deviations).append(problem)
    return f"{received['method']} {received['path']}", deviations, notes


def _replayer(mock_url: str) -> Callable[[dict[str, Any]], Response]:
    def replay(received: dict[str, Any]) -> Response:
        again = replayed_request(received, mock_url)
        return request(again.method, again.url, again.body, dict(again.headers))

    return replay


def run_hosting(hosting: Hosting, gateway: Gateway, kong_compat: bool = False
                ) -> Iterator[CaseResult]:
    with run_mock(hosting.mock) as mock:
        config = kong_config.point_at(kong_config.load(hosting.example), mock.url)
        targets = kong_config.targets(config)
        proxy_url = gateway.load(config)
        try:
            for path, body, schema in SEED_CASES:
                target = targets[path]
                result = CaseResult(hosting.name, hosting.llama2_format, target.route_type)
                mock.control.clear_journal()
                response = post_json(proxy_url + path, body)
                journal = mock.control.journal()
                mock.control.clear_journal()
                result.upstream, result.deviations, result.notes = check_exchange(
                    target, body, response, journal, _replayer(mock.url), schema, kong_compat
                )
                text = _client_text(response) or response.body.decode(errors="replace")
                result.client = f"{response.status} {_short(text)}"
                yield result
        finally:
            gateway.close()


def run_seed(gateway: Gateway, kong_compat: bool = False) -> list[CaseResult]:
    return [result for hosting in HOSTINGS
            for result in run_hosting(hosting, gateway, kong_compat)]
