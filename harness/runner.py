"""Running the catalogue against a gateway: start the mocks, load one config carrying every case,
send each case's request, and judge what the upstream received and what the client got.

A case passes when the reference expectation holds. When it does not but Kong's flavour does, the
case is a *deviation*, reported by the name of Kong's known behaviour; otherwise it fails."""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from proxyproof.mocks import run_mock

from . import oracle, user_routes
from .catalogue import gateway_config
from .catalogue.model import Case
from .checks import Exchange, problems
from .gateway import Gateway
from .hostings import BY_KEY
from .http import Response, request
from .journal import replayed_request
from .results import CaseResult, Report
from .secrets import CREDENTIAL_HEADERS, Masker, secrets_in_plugin

CLIENT_TIMEOUT = 30.0
# What the mocks serve: the examples' model and the clients' own choices in the catalogue.
MODELS = ("llama2", "mistral", "try-to-override-the-model")
Progress = Callable[[Case, CaseResult | None], None]  # (case, None) when it starts


@dataclass(frozen=True)
class MockPlacement:
    """Where the mocks listen (``bind``) and the host name the gateway reaches them by (``host``:
    e.g. ``host.docker.internal`` for a gateway in a container)."""

    bind: str = "127.0.0.1"
    host: str | None = None
    # How a mock is started: ``run_mock``'s signature, a context manager with ``url`` and
    # ``control`` (the load command starts mocks in processes of their own).
    starter: Callable[..., Any] | None = None

    def start(self, kind: str, **options: Any) -> Any:
        return (self.starter or run_mock)(kind, **options)

    def seen_as(self, url: str) -> str:
        if not self.host:
            return url
        port = urlsplit(url).port
        return f"http://{self.host}:{port}"


@dataclass(frozen=True)
class Binding:
    """A case bound to a gateway route: the path to call and the target config behind it."""

    case: Case
    path: str
    target: dict[str, Any]  # the route's ai-proxy config, upstream pointed at its mock
    result_id: str = ""  # the case id, or "case@route" when run on a user's routes

    @property
    def id(self) -> str:
        return self.result_id or self.case.id


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def without_streaming(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The journaled upstream request asked for as one JSON reply instead of a stream."""
    entry = copy.deepcopy(dict(entry))
    body = entry.get("body")
    if isinstance(body, dict):
        body.pop("stream_options", None)
        if "stream" in body:
            body["stream"] = False
        if isinstance(body.get("parameters"), dict):
            body["parameters"]["stream"] = False
            body.pop("stream", None)
    return entry


class CatalogueRun:
    """The mocks of one run, and how one case is sent and judged."""

    def __init__(self, gateway: Gateway, stack: ExitStack, kinds: Iterable[str],
                 models: Iterable[str] = MODELS, mocks: MockPlacement | None = None) -> None:
        self.gateway = gateway
        placement = mocks or MockPlacement()
        models = tuple(dict.fromkeys([*MODELS, *models]))
        self.mocks = {kind: stack.enter_context(placement.start(kind, models=models,
                                                                host=placement.bind))
                      for kind in sorted(set(kinds))}
        self.places = gateway_config.Places(
            {k: placement.seen_as(m.url) for k, m in self.mocks.items()}, _closed_port())

    def _replay(self, mock: Any) -> Callable[[Mapping[str, Any], bool | None], Response]:
        def replay(entry: Mapping[str, Any], stream: bool | None) -> Response:
            mock.control.clear_scripts()  # the replay learns the upstream's own answer
            again = replayed_request(entry if stream is None else without_streaming(entry),
                                     mock.url)
            return request(again.method, again.url, again.body, dict(again.headers),
                           timeout=CLIENT_TIMEOUT)

        return replay

    def _send(self, case: Case, proxy_url: str, path: str) -> Response:
        method, url, data, headers = self.outgoing(case, proxy_url, path)
        return request(method, url, data, headers, timeout=CLIENT_TIMEOUT)

    def outgoing(self, case: Case, proxy_url: str, path: str
                 ) -> tuple[str, str, bytes | None, dict[str, str]]:
        """What the case sends through the gateway: method, URL, body and headers."""
        req = case.request
        url = proxy_url + path
        body_json = req.body
        headers = dict(req.headers)
        adapt = getattr(self.gateway, "adapt", None)
        if adapt is not None:  # a gateway that is not Kong-shaped addresses cases its own way
            url, body_json, headers = adapt(case, proxy_url, body_json, headers)
        if req.query:
            url += "?" + urlencode(req.query, doseq=True)
        if req.content_type:
            headers.setdefault("Content-Type", req.content_type)
        if req.raw_body is not None:
            data: bytes | None = req.raw_body.encode()
        else:
            data = None if body_json is None else json.dumps(body_json).encode()
        return req.method, url, data, headers

    def _journal(self, mock: Any) -> list[dict[str, Any]]:
        entries = mock.control.journal()
        return [mock.control.wait(e["id"]) if e.get("outcome") == "pending" else e
                for e in entries]

    def run_case(self, binding: Binding, proxy_url: str) -> CaseResult:
        started = time.monotonic()
        case, target = binding.case, binding.target
        hosting = BY_KEY[case.hosting]
        mock = self.mocks[hosting.mock]
        mask = Masker(self._secrets(case, target))
        result = CaseResult(binding.id, case.title, case.features, hosting.name, "pass",
                            route=binding.path)
        reason = getattr(self.gateway, "supports", lambda _case: None)(case)
        if reason:
            result.outcome, result.details = "n/a", [reason]
            return result
        mock.control.reset()
        if case.script:
            mock.control.script(**{"times": 1, **case.script})
        response = self._send(case, proxy_url, binding.path)
        journal = self._journal(mock)
        exchange = Exchange(case, gateway_config.route_setup(target),
                            target["model"]["options"]["upstream_url"],
                            case.request.body if case.request.raw_body is None else None,
                            response, journal, self._replay(mock))
        found = problems(exchange, case.expect, kong=False)
        kong = case.kong or (case.expect if case.expect.oracle else None)
        if found and kong is not None and not problems(exchange, kong, kong=True):
            names = [case.deviation] if case.deviation else oracle.kong_quirks(
                exchange.setup, exchange.request_body or {}, hosting.mock)
            result.outcome = "deviation"
            result.details = [f"Kong: {name}" for name in names or ["Kong's behaviour"]]
            result.details += [f"differs from the reference: {p}" for p in found]
        elif found:
            result.outcome = "fail"
            result.details = found
        result.expected = self._expected(case, exchange)
        result.actual = {"status": response.status, "headers": dict(response.headers),
                         "body": response.body[:4000].decode("utf-8", "replace"),
                         "complete": response.complete}
        result.journal = [{k: e.get(k) for k in ("method", "path", "query", "headers", "body",
                                                  "status", "outcome")} for e in journal]
        result.details = [mask.text(d) for d in result.details]
        result.expected, result.actual, result.journal = (
            mask(result.expected), mask(result.actual), mask(result.journal))
        result.seconds = time.monotonic() - started
        return result

    @staticmethod
    def _expected(case: Case, ex: Exchange) -> dict[str, Any]:
        want = {k: v for k, v in vars(case.expect).items() if v not in (None, {}, False)}
        if case.expect.oracle and isinstance(ex.request_body, dict):
            want["upstream_body (oracle)"] = oracle.expected_upstream_body(
                ex.setup, ex.request_body, kong_compat=False)
        return want

    @staticmethod
    def _secrets(case: Case, target: Mapping[str, Any]) -> list[str]:
        found = secrets_in_plugin(target)
        auth = target.get("auth") or {}
        for name, value in case.request.headers.items():
            if name.lower() in CREDENTIAL_HEADERS or name.lower() == str(
                    auth.get("header_name", "")).lower():
                found += [value, value.partition(" ")[2]]
        if auth.get("param_name"):
            body = case.request.body if isinstance(case.request.body, dict) else {}
            for value in (case.request.query.get(auth["param_name"]),
                          body.get(auth["param_name"])):
                if isinstance(value, str):
                    found.append(value)
        return found


@dataclass
class Prepared:
    """Mocks running, the gateway loaded: what remains is to run each binding."""

    run: CatalogueRun
    proxy_url: str
    bindings: list[Binding]

    def result(self, binding: Binding) -> CaseResult:
        return self.run.run_case(binding, self.proxy_url)


@contextmanager
def prepared(gateway: Gateway, cases: list[Case], user_config: dict[str, Any] | None = None,
             mocks: MockPlacement | None = None) -> Iterator[Prepared]:
    """Start the mocks and load the gateway: with the catalogue's own config (a route per case),
    or with the user's ``user_config``, its llama2 upstreams pointed at the mocks and the cases
    that apply bound to each of its routes."""
    with ExitStack() as stack:
        if user_config is None:
            run = CatalogueRun(gateway, stack, (BY_KEY[c.hosting].mock for c in cases),
                               mocks=mocks)
            bindings = [Binding(case, gateway_config.route_path(case),
                                gateway_config.case_target(case, run.places))
                        for case in cases]
            config = gateway_config.build(cases, run.places)
        else:
            routes = user_routes.find(user_config)
            if not routes:
                raise user_routes.UserConfigError(
                    "no ai-proxy or ai-proxy-advanced route with the llama2 provider was found")
            kinds, models = user_routes.upstreams(user_config, routes)
            run = CatalogueRun(gateway, stack, kinds, models=models, mocks=mocks)
            config = user_routes.point_at_mocks(user_config, routes, run.places.mocks)
            bindings = [Binding(case, route.path, route.pointed_target(config),
                                f"{case.id}@{route.name}")
                        for route in routes for case in cases
                        if user_routes.applies(case, route)]
        proxy_url = gateway.load(config)
        stack.callback(gateway.close)
        yield Prepared(run, proxy_url, bindings)


def run_catalogue(gateway: Gateway, cases: list[Case], progress: Progress | None = None,
                  describe: Mapping[str, Any] | None = None,
                  mocks: MockPlacement | None = None,
                  user_config: dict[str, Any] | None = None) -> Report:
    """Every case of ``cases`` through ``gateway`` (each on a route of its own, or on the user's
    routes it applies to), in order."""
    report = Report({"name": gateway.name, **(describe or {})})
    with prepared(gateway, cases, user_config, mocks) as ready:
        report.gateway["proxy_url"] = ready.proxy_url
        for binding in ready.bindings:
            if progress:
                progress(binding.case, None)
            result = ready.result(binding)
            report.cases.append(result)
            if progress:
                progress(binding.case, result)
    return report
