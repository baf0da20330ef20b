"""The soak: a steady mix of normal, streaming, failing and hostile requests leaves no 5xx behind
and nothing held: descriptors, memory and event-loop tasks stay flat."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from proxyproof.cli import main
from proxyproof.gateways import bundled_gateway
from proxyproof.harness.catalogue import load_catalogue
from proxyproof.harness.gateway import InProcessGateway
from proxyproof.harness.soak import HOSTILE, run_soak, soak_cases

MIB = 1024


def test_thirty_seconds_of_mixed_and_hostile_load_through_the_proxy():
    with bundled_gateway(False) as gateway:
        report = run_soak(gateway, load_catalogue(), duration=30, rate=40, seed=9)
    kinds = {kind.split(":")[0] for kind in report.outcomes}
    assert kinds >= {"normal", "streaming", "failing", "hostile"}, report.outcomes
    assert report.sent >= 30 * 40 * 0.9
    assert report.unexpected_5xx_count == 0, report.unexpected_5xx
    assert report.failed_connections == 0, report.outcomes
    start, end = report.start, report.end
    # Pooled keep-alive connections to the mocks may grow with the peak concurrency (bounded by
    # the pool), a leak with the request count: 1,200 requests would leak hundreds.
    assert end.open_fds - start.open_fds <= 16, (start, end)
    assert end.rss_kib - start.rss_kib < 24 * MIB, (start, end)
    assert end.tasks <= start.tasks, (start, end)


def test_every_hostile_kind_is_answered_without_a_5xx():
    with bundled_gateway(True) as gateway:  # Kong's flavour must not crash on them either
        report = run_soak(gateway, load_catalogue(), duration=3, rate=60, seed=1)
    sent = {k.split(": ")[1] for k in report.outcomes if k.startswith("hostile")}
    assert sent == {name for name, *_ in HOSTILE}  # the seed sends every kind
    assert report.unexpected_5xx_count == 0, report.unexpected_5xx


def _crashes_on_hostile(config: dict[str, Any]) -> web.Application:
    """A gateway that answers every well-formed request 200 and crashes on anything else."""
    async def handle(request: web.Request) -> web.Response:
        try:
            json.loads(await request.read())
        except ValueError:
            return web.json_response({"message": "boom"}, status=500)
        return web.json_response({"choices": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def test_a_gateway_that_crashes_on_bad_input_is_caught():
    with InProcessGateway(_crashes_on_hostile, "fragile") as gateway:
        report = run_soak(gateway, load_catalogue(), duration=2, rate=50, seed=3)
    assert not report.ok
    assert report.unexpected_5xx_count > 0
    assert any(line.startswith("500 for hostile") for line in report.unexpected_5xx)


def test_only_cases_that_can_run_concurrently_are_soaked():
    chosen = soak_cases(load_catalogue())
    assert chosen and all(c.script is None and not c.service for c in chosen)


def test_soak_command_prints_a_json_report(capsys):
    with pytest.raises(SystemExit) as done:
        main(["soak", "--duration", "2", "--rate", "20", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == (0 if report["ok"] else 1)
    assert report["sent"] >= 30 and report["resources"]["end"]["open_fds"] > 0


@pytest.mark.parametrize("argv, message", [
    (["soak", "--rate", "0"], "must be more than 0"),
    (["soak", "--duration", "soon"], "not a number"),
    (["soak", "--gateway", "kong"], "needs --admin-url and --proxy-url"),
])
def test_soak_usage_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err
