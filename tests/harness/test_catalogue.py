"""The catalogue against the bundled proxy (both behaviours), on the user's own configs, and against
gateways that misbehave on purpose: the harness must pass what conforms and fail exactly what
does not."""

from __future__ import annotations

import asyncio
import collections
import json
from importlib import resources
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from proxyproof.gateways import bundled_app, bundled_gateway
from proxyproof.harness.catalogue import CatalogueError, load_catalogue, select
from proxyproof.harness.catalogue.loader import HOSTING_KEYS
from proxyproof.harness.gateway import InProcessGateway
from proxyproof.harness.runner import run_catalogue
from proxyproof.serving import ThreadedServer

CATALOGUE = load_catalogue()
EXAMPLES = resources.files("proxyproof.fixtures") / "examples"


def test_the_catalogue_covers_what_it_must():
    assert len(CATALOGUE) >= 120
    assert len({case.id for case in CATALOGUE}) == len(CATALOGUE)
    grid = {(c.hosting, c.route, bool(isinstance(c.request.body, dict)
                                      and c.request.body.get("stream")))
            for c in CATALOGUE if "core" in c.features}
    assert grid >= {(h, r, s) for h in HOSTING_KEYS for r in ("chat", "completions")
                    for s in (False, True)}
    features = collections.Counter(f for c in CATALOGUE for f in c.features)
    for feature in ("core", "streaming", "auth", "errors", "headers", "options", "kong", "seed"):
        assert features[feature] >= 2, feature
    assert {c.id for c in CATALOGUE} >= {"seed.ollama.chat", "errors.dns-failure.gguf",
                                         "errors.timeout.ollama", "kong.unit.request.raw-chat"}


def test_selection_by_profile_id_and_expression():
    assert all("auth" in c.features for c in select(CATALOGUE, ["auth"]))
    assert [c.id for c in select(CATALOGUE, ids=["seed.ollama.chat"])] == ["seed.ollama.chat"]
    chosen = select(CATALOGUE, expression="ollama and not stream and core")
    assert chosen and all("ollama" in c.id and "stream" not in c.id for c in chosen)
    with pytest.raises(CatalogueError, match="unknown profile"):
        select(CATALOGUE, ["nonsense"])
    with pytest.raises(CatalogueError, match="unknown case id"):
        select(CATALOGUE, ids=["no.such.case"])


def test_every_case_passes_against_the_reference_proxy():
    report = run_catalogue(bundled_gateway(), CATALOGUE)
    bad = {c.id: c.details for c in report.cases if c.outcome != "pass"}
    assert bad == {}
    assert report.summary["pass"] == len(CATALOGUE)


def test_kong_mode_passes_or_names_each_deviation():
    report = run_catalogue(bundled_gateway(kong_compat=True), CATALOGUE)
    assert report.summary["fail"] == 0, [c.details for c in report.cases if c.outcome == "fail"]
    deviations = [c for c in report.cases if c.outcome == "deviation"]
    assert len(deviations) > 40
    for case in deviations:
        assert case.details[0].startswith("Kong: ") and len(case.details[0]) > 12
    names = {d for c in deviations for d in c.details if d.startswith("Kong: ")}
    assert "Kong: raw chat prompt built by position (assistant turns dropped)" in names
    assert "Kong: raw reads only {data: [...]}: HuggingFace replies fail with 500" in names


def test_credentials_never_reach_a_result():
    report = run_catalogue(bundled_gateway(kong_compat=True), select(CATALOGUE, ["auth"]))
    text = json.dumps(report.as_dict())
    for secret in ("configured-secret-1", "client-secret-2", "configured-secret-3",
                   "client-secret-4", "configured-secret-5", "client-secret-6", "llama2-key"):
        assert secret not in text
    assert "***" in text


@pytest.mark.parametrize("example", sorted(e.name for e in EXAMPLES.iterdir()))
def test_the_cases_run_on_a_users_own_routes(example):
    config = yaml.safe_load((EXAMPLES / example).read_text(encoding="utf-8"))
    report = run_catalogue(bundled_gateway(), CATALOGUE, user_config=config)
    assert len(report.cases) >= 8
    assert {c.route for c in report.cases} == {"/llama2-chat", "/llama2-completions"}
    assert all("@" in c.id for c in report.cases)
    assert [c.details for c in report.cases if c.outcome != "pass"] == []


# ---------------------------------------------------------------- gateways that misbehave


def _misbehaving(mode: str):
    """A gateway that fronts the reference proxy and breaks one thing on purpose."""

    def app(config: dict[str, Any]) -> web.Application:
        inner = ThreadedServer(lambda: bundled_app(config)).start()

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            if mode == "drop-system" and body:
                try:
                    decoded = json.loads(body)
                except ValueError:
                    decoded = None
                if isinstance(decoded, dict) and isinstance(decoded.get("messages"), list):
                    decoded["messages"] = [m for m in decoded["messages"]
                                           if not (isinstance(m, dict)
                                                   and m.get("role") == "system")]
                    body = json.dumps(decoded).encode()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in ("host", "content-length")}
            async with aiohttp.ClientSession() as session, session.request(
                request.method, inner.url + request.path_qs, data=body, headers=headers
            ) as reply:
                payload = await reply.read()
                status = reply.status
                if mode == "lose-done":
                    payload = payload.replace(b"data: [DONE]\n\n", b"")
                if mode == "401-to-500" and status == 401:
                    status = 500
                keep = {k: v for k, v in reply.headers.items() if k.lower() not in (
                    "content-length", "transfer-encoding", "content-encoding")}
                return web.Response(status=status, body=payload, headers=keep)

        async def stop(_app: web.Application) -> None:
            await asyncio.get_running_loop().run_in_executor(None, inner.stop)

        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", forward)
        application.on_cleanup.append(stop)
        return application

    return InProcessGateway(app, f"misbehaving ({mode})")


def _has_system(case) -> bool:
    body = case.request.body
    return isinstance(body, dict) and any(
        isinstance(m, dict) and m.get("role") == "system" for m in body.get("messages") or [])


def _streams(case) -> bool:
    return isinstance(case.request.body, dict) and case.request.body.get("stream") is True


@pytest.mark.parametrize(
    ("mode", "profile", "should_fail"),
    [("drop-system", "core", _has_system),
     ("lose-done", "core", _streams),
     ("401-to-500", "auth", lambda case: case.expect.status == 401)],
)
def test_a_misbehaving_gateway_fails_exactly_the_matching_cases(mode, profile, should_fail):
    cases = select(CATALOGUE, [profile])
    report = run_catalogue(_misbehaving(mode), cases)
    failed = {c.id for c in report.cases if c.outcome == "fail"}
    expected = {c.id for c in cases if should_fail(c)}
    assert expected and failed == expected
    for result in report.cases:
        if result.outcome == "fail":
            assert result.details and all("expected" in d or "no chunk" in d
                                          or "does not end" in d for d in result.details)
            assert result.actual["status"] and result.journal is not None
