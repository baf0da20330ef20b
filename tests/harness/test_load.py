"""``proxyproof load`` end to end, as separate processes on 127.0.0.1: a Locust master and two
workers against the bundled proxy, and a standalone run against a gateway that breaks only
under load, which conformance sampling catches."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from aiohttp import ClientSession, web

from proxyproof.harness.load.summary import SCHEMA
from proxyproof.proxy_impl.admin import proxy_and_admin_apps
from proxyproof.serving import ThreadedServer

LOAD = [sys.executable, "-m", "proxyproof", "load"]
RUN = ["--users", "4", "--spawn-rate", "4", "--run-time", "1"]
SENT = re.compile(r"worker: (\d+) requests sent")
SESSION = web.AppKey("session", ClientSession)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _mix(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mix.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_master_and_two_workers_count_every_request(tmp_path: Path) -> None:
    port = str(_free_port())
    mix = _mix(tmp_path, "hostings: {ollama: 1}\nroutes: {chat: 1}\n")
    summary, html, csv = tmp_path / "load.json", tmp_path / "load.html", tmp_path / "load"
    master = subprocess.Popen(
        [*LOAD, *RUN, "--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", port, "--mix", mix, "--sample", "0.2", "--json", str(summary),
         "--html", str(html), "--csv", str(csv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = [subprocess.Popen([*LOAD, "--worker", "--master-host", "127.0.0.1",
                                 "--master-port", port],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    out, err = master.communicate(timeout=120)
    said = [worker.communicate(timeout=60)[1] for worker in workers]
    assert master.returncode == 0, out + err
    assert [worker.returncode for worker in workers] == [0, 0], said
    report = json.loads(summary.read_text(encoding="utf-8"))
    jsonschema.validate(report, SCHEMA)
    sent = [int(SENT.search(text).group(1)) for text in said]  # type: ignore[union-attr]
    assert report["workers"] == 2
    assert all(count > 0 for count in sent)
    assert report["requests"] == sum(sent)  # both workers' requests in the master's totals
    assert sum(kind["requests"] for kind in report["by_kind"].values()) == report["requests"]
    assert sum(report["outcomes"].values()) == report["requests"]
    assert report["outcomes"]["unexpected_5xx"] == 0
    assert report["outcomes"]["stream_cut"] == 0
    assert report["samples_checked"] > 0 and report["samples_failed"] == 0
    assert {"ollama chat", "ollama chat stream"} <= set(report["by_kind"])
    assert report["by_kind"]["ollama chat stream"]["ttft_p50_ms"] is not None
    assert report["by_kind"]["ollama chat"]["ttft_p50_ms"] is None
    assert "ollama chat stream" in html.read_text(encoding="utf-8")
    assert "TTFT" in (tmp_path / "load_stats.csv").read_text(encoding="utf-8")


class CorruptingFront:
    """A gateway that breaks only under load: in front of the bundled proxy, it changes the text
    of a JSON chat reply whenever another request is in flight at the same time."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.in_flight, self.corrupted = upstream, 0, 0

    async def _session(self, app: web.Application) -> Iterator[None]:
        async with ClientSession(auto_decompress=False) as session:
            app[SESSION] = session
            yield

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            async with request.app[SESSION].request(
                request.method, self.upstream + request.path_qs, data=await request.read(),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            ) as reply:
                body = await reply.read()
                headers = {k: v for k, v in reply.headers.items()
                           if k.lower() not in ("content-length", "transfer-encoding",
                                                "content-encoding", "connection")}
                status = reply.status
            if self.in_flight > 1 and status == 200 and body.startswith(b"{"):
                document = json.loads(body)
                for choice in document.get("choices") or []:
                    if isinstance(choice.get("message"), dict):
                        choice["message"]["content"] = "a different answer"
                        self.corrupted += 1
                body = json.dumps(document).encode()
            return web.Response(status=status, body=body, headers=headers)
        finally:
            self.in_flight -= 1

    def app(self) -> web.Application:
        app = web.Application()
        app.cleanup_ctx.append(self._session)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
def broken_gateway() -> Iterator[tuple[str, str, CorruptingFront]]:
    proxy_factory, admin_factory = proxy_and_admin_apps()
    with ThreadedServer(proxy_factory) as proxy, ThreadedServer(admin_factory) as admin:
        front = CorruptingFront(proxy.url)
        with ThreadedServer(front.app) as served:
            yield admin.url, served.url, front


def test_sampling_catches_a_gateway_that_breaks_only_under_load(
        tmp_path: Path, broken_gateway: tuple[str, str, CorruptingFront]) -> None:
    admin_url, front_url, front = broken_gateway
    mix = _mix(tmp_path, "hostings: {ollama: 1}\nroutes: {chat: 1}\nstream: 0\n"
                         "failing: 0\nhostile: 0\n")
    done = subprocess.run(
        [*LOAD, *RUN, "--gateway", "kong", "--admin-url", admin_url, "--proxy-url", front_url,
         "--mix", mix, "--sample", "0.5", "--json", "-"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    assert front.corrupted > 0
    assert report["outcomes"]["unexpected_5xx"] == 0  # every status was fine: only the text
    assert report["samples_failed"] > 0
    assert "failed the oracle's check" in done.stderr
    assert "streamed text" in done.stderr or "expected" in done.stderr
