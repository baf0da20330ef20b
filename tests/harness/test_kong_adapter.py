"""The ``kong`` adapter end to end: the catalogue through ``KongGateway`` against the bundled proxy
started with its admin listener (Kong's DB-less Admin API), and the adapter's clear errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from proxyproof.harness.adapters import GatewayError, KongGateway
from proxyproof.harness.adapters.kong import refusal_message, with_ready_route
from proxyproof.harness.catalogue import load_catalogue, select
from proxyproof.harness.http import Response, request
from proxyproof.harness.runner import run_catalogue
from proxyproof.proxy_impl.admin import proxy_and_admin_apps
from proxyproof.serving import ThreadedServer

CASES = select(load_catalogue(), profiles=["core", "errors"])
SECRET = "sekrit-adapter-456"


@dataclass
class Running:
    proxy_url: str
    admin_url: str

    def gateway(self, **kwargs) -> KongGateway:
        return KongGateway(self.admin_url, self.proxy_url, **kwargs)


def _running(kong_compat: bool) -> Iterator[Running]:
    proxy_factory, admin_factory = proxy_and_admin_apps(kong_compat=kong_compat)
    with ThreadedServer(proxy_factory) as proxy, ThreadedServer(admin_factory) as admin:
        yield Running(proxy.url, admin.url)


@pytest.fixture
def reference() -> Iterator[Running]:
    yield from _running(kong_compat=False)


@pytest.fixture
def kong_mode() -> Iterator[Running]:
    yield from _running(kong_compat=True)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(llama2_format: str = "ollama", auth_value: str = SECRET) -> dict:
    plugin = {"name": "ai-proxy", "config": {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": auth_value},
        "model": {"provider": "llama2", "name": "llama2",
                  "options": {"llama2_format": llama2_format,
                              "upstream_url": "http://127.0.0.1:9/api/chat"}},
    }}  # fmt: skip
    return {"_format_version": "3.0", "services": [{
        "name": "llm", "url": "http://127.0.0.1:9",
        "routes": [{"name": "chat", "paths": ["/chat"], "plugins": [plugin]}],
    }]}  # fmt: skip


# --- the catalogue through the adapter ----------------------------------------------------------


def test_the_catalogue_passes_through_kongs_admin_api(reference):
    report = run_catalogue(reference.gateway(), CASES)
    assert [c.details for c in report.cases if c.outcome != "pass"] == []
    assert report.summary["pass"] == len(CASES)


def test_kong_mode_passes_or_names_each_deviation(kong_mode):
    report = run_catalogue(kong_mode.gateway(), CASES)
    assert report.summary["fail"] == 0, [c.details for c in report.cases if c.outcome == "fail"]
    assert report.summary["deviation"] > 0
    assert report.summary["pass"] + report.summary["deviation"] == len(CASES)


def test_a_second_load_replaces_the_first(reference):
    """Each run starts new mocks, so the same routes move to new upstreams: the second run passes
    only if the adapter waited for the new config to be served."""
    gateway = reference.gateway()
    for cases in (CASES[:10], CASES[:10]):
        report = run_catalogue(gateway, cases)
        assert report.summary["pass"] == len(cases)
    assert gateway.node["configuration"]["database"] == "off"


def test_loading_the_served_config_again_is_a_304(reference):
    gateway = reference.gateway()
    config = _config()
    assert gateway.load(config) == reference.proxy_url
    served = request("GET", reference.admin_url + "/status").json()["configuration_hash"]
    gateway.load(config)
    assert request("GET", reference.admin_url + "/status").json()["configuration_hash"] == served
    answer = request("POST", reference.proxy_url + "/chat", b"{}",
                     {"Content-Type": "application/json"})
    assert answer.status == 400  # the route is served; the empty body is the plugin's 400


def test_the_ready_route_is_added_to_a_copy():
    config = _config()
    sent, path = with_ready_route(config)
    assert "routes" not in config
    assert sent["routes"] == [{"name": sent["routes"][0]["name"], "paths": [path]}]
    assert with_ready_route(config)[1] == path  # the same config, the same route
    assert with_ready_route(_config(auth_value="other"))[1] != path


# --- the adapter's errors -----------------------------------------------------------------------


def test_an_unreachable_admin_api_is_said_so():
    gateway = KongGateway(f"http://127.0.0.1:{_closed_port()}", "http://127.0.0.1:9")
    with pytest.raises(GatewayError, match="cannot be reached .*admin listener"):
        gateway.load(_config())


@dataclass
class FakeKong:
    """A tiny stand-in for a Kong Admin API (and proxy) answering what it is told to."""

    node: dict
    post_status: int = 201
    post_body: dict = field(default_factory=dict)
    node_status: int = 200
    seen: list[str] = field(default_factory=list)
    configuration_hash: str = "0" * 32

    def app(self) -> web.Application:
        async def node(request: web.Request) -> web.Response:
            self.seen.append("GET /")
            return web.json_response(self.node, status=self.node_status)

        async def status(request: web.Request) -> web.Response:
            return web.json_response({"configuration_hash": self.configuration_hash})

        async def post_config(request: web.Request) -> web.Response:
            self.seen.append("POST /config")
            if self.post_status == 304:
                return web.Response(status=304)
            self.configuration_hash = "1" * 32
            return web.json_response(self.post_body, status=self.post_status)

        async def no_route(request: web.Request) -> web.Response:
            return web.json_response({"message": "no Route matched with those values"},
                                     status=404)

        app = web.Application()
        app.router.add_get("/", node)
        app.router.add_get("/status", status)
        app.router.add_post("/config", post_config)
        app.router.add_route("*", "/proxyproof-ready/{token}", no_route)
        return app


@pytest.fixture
def fake_kong() -> Iterator[tuple[FakeKong, str]]:
    fake = FakeKong({"version": "3.9.0", "configuration": {"database": "off"}})
    with ThreadedServer(fake.app) as server:
        yield fake, server.url


def test_a_kong_with_a_database_is_refused_before_anything_is_sent(fake_kong):
    fake, url = fake_kong
    fake.node = {"version": "3.9.0", "configuration": {"database": "postgres"}}
    with pytest.raises(GatewayError, match=r"database \(postgres\).*KONG_DATABASE=off"):
        KongGateway(url, url).load(_config())
    assert fake.seen == ["GET /"]


def test_something_that_is_not_kongs_admin_api_is_said_so(reference, fake_kong):
    with pytest.raises(GatewayError, match="is that Kong's Admin API"):
        KongGateway(reference.proxy_url, reference.proxy_url).load(_config())
    fake, url = fake_kong
    fake.node = {"hello": "world"}
    with pytest.raises(GatewayError, match="which database"):
        KongGateway(url, url).load(_config())


def test_an_admin_api_wanting_credentials_is_said_so(fake_kong):
    fake, url = fake_kong
    fake.node, fake.node_status = {"message": "Invalid credentials. Token or User credentials "
                                              "required"}, 401
    with pytest.raises(GatewayError, match="answered 401: .*credentials"):
        KongGateway(url, url).load(_config())


def test_a_refused_config_names_the_fields_without_the_secret(reference):
    with pytest.raises(GatewayError) as refused:
        reference.gateway().load(_config(llama2_format="vicuna"))
    message = str(refused.value)
    assert message.startswith("Kong refused the config (400):")
    assert ("plugin 'ai-proxy': config.model.options.llama2_format: expected one of: raw, "
            "openai, ollama") in message
    assert SECRET not in message


def test_a_proxy_that_never_serves_the_config_times_out_clearly(fake_kong):
    fake, url = fake_kong  # its "proxy" answers no-route for ever
    with pytest.raises(GatewayError, match=r"accepted the config, but not within 0.2s .*routed"):
        KongGateway(url, url, ready_within=0.2).load(_config())


def test_a_304_needs_no_waiting(fake_kong):
    fake, url = fake_kong
    fake.post_status = 304
    assert KongGateway(url, url + "/", ready_within=0.2).load(_config()) == url
    assert fake.seen == ["GET /", "POST /config"]


def test_refusals_read_in_a_few_lines():
    many = [{"entity_type": "route", "entity_name": f"r{i}", "entity": {"secret": SECRET},
             "errors": [{"type": "entity", "message": "bad"}]} for i in range(8)]
    body = b'{"message": "declarative config is invalid: ...", "flattened_errors": %s}' % (
        str(many).replace("'", '"').encode())
    text = refusal_message(Response(400, {}, body))
    assert text.splitlines()[1:] == ["  route 'r0': bad", "  route 'r1': bad", "  route 'r2': bad",
                                     "  route 'r3': bad", "  route 'r4': bad",
                                     "  ... and 3 more"]
    assert SECRET not in text
    assert refusal_message(Response(400, {}, b'{"message": "expected a declarative '
                                              b'configuration"}')).endswith(
        "(400): expected a declarative configuration")
    assert refusal_message(Response(502, {}, b"<html>bad gateway</html>")) == (
        "Kong refused the config (502): <html>bad gateway</html>")
