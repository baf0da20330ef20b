"""Templates in upstream_url: a client's value stays data in its URL component (render_url), and
Kong's whole-field raw value only when asked for, Kong mode included (docs/security.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web
from multidict import CIMultiDict
from proxy_support import CHAT, SEED_CHAT, ai_proxy, closed_port, declarative, post, running_proxy

from proxyproof.proxy_impl.behaviour import FIXED, KONG, behaviour_for
from proxyproof.proxy_impl.templates import RequestValues, TemplateError
from proxyproof.proxy_impl.url_templates import UnsafeValue, render_url, render_url_raw
from proxyproof.serving import ThreadedServer


def values(headers: dict[str, str] | None = None, **query: str) -> RequestValues:
    return RequestValues(CIMultiDict(headers or {}), query, {})


# --- render_url, pure ----------------------------------------------------------------------------


def test_raw_templates_are_opt_in_even_in_kong_mode():
    assert FIXED.url_templates == KONG.url_templates == "encoded"
    raw_kong = behaviour_for(True, url_templates="raw")
    assert raw_kong.url_templates == "raw" and raw_kong.positional_chat_prompt  # Kong otherwise
    assert behaviour_for(False, url_templates="raw").url_templates == "raw"


def test_no_template_is_the_url_as_configured():
    assert render_url("http://h:1/a%20b?x=1", values()) == "http://h:1/a%20b?x=1"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("chat", "http://h/api/chat"),
        ("../__mock__/reset", "http://h/api/..%2F__mock__%2Freset"),
        ("chat?x=1#f", "http://h/api/chat%3Fx%3D1%23f"),
        ("100%", "http://h/api/100%25"),
        ("a b/é", "http://h/api/a%20b%2F%C3%A9"),
        ("...", "http://h/api/..."),
    ],
)
def test_a_path_value_is_one_segment(value, rendered):
    assert render_url("http://h/api/$(query_params.op)", values(op=value)) == rendered


@pytest.mark.parametrize("value", ["..", ".", "%2e%2E"])
def test_dot_segments_are_refused(value):
    if value.startswith("%"):  # an encoded dot is encoded again: the upstream sees the text
        rendered = render_url("http://h/api/$(query_params.op)", values(op=value))
        assert rendered.endswith("%252e%252E")
        return
    with pytest.raises(UnsafeValue, match=f"query_params key op makes a '{value}' path segment"):
        render_url("http://h/api/$(query_params.op)", values(op=value))


def test_two_values_that_together_make_a_dot_segment():
    with pytest.raises(UnsafeValue):
        render_url("http://h/$(query_params.a)$(query_params.b)/x", values(a=".", b="."))
    assert render_url("http://h/v$(query_params.a)/x", values(a=".")) == "http://h/v./x"


def test_query_and_fragment_values_add_no_parameter():
    url = "http://h/api?model=$(query_params.m)&k=1#$(query_params.f)"
    assert render_url(url, values(m="a&admin=1", f="x#y")) == (
        "http://h/api?model=a%26admin%3D1&k=1#x%23y"
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ollama", True),
        ("llm-1.internal", True),
        ("evil.example@127.0.0.1", False),
        ("127.0.0.1:1/x", False),
        ("h/x", False),
        ("", False),
        ("a..b", False),
        ("-h", False),
    ],
)
def test_a_host_value_must_be_a_host_name(value, ok):
    url = "http://$(headers.x-host):11434/api/chat"
    if ok:
        assert render_url(url, values({"X-Host": value})) == f"http://{value}:11434/api/chat"
    else:
        with pytest.raises(UnsafeValue):
            render_url(url, values({"X-Host": value}))


@pytest.mark.parametrize(
    ("value", "ok"),
    [("8080", True), ("99999", False), ("8o", False), ("0", False), ("80/x", False), ("٣", False)],
)
def test_a_port_value_must_be_a_port(value, ok):
    url = "http://ollama:$(query_params.port)/api/chat"
    if ok:
        assert render_url(url, values(port=value)) == f"http://ollama:{value}/api/chat"
    else:
        with pytest.raises(UnsafeValue):
            render_url(url, values(port=value))


def test_scheme_and_userinfo():
    url = "$(query_params.s)://$(query_params.u)@h/x"
    assert render_url(url, values(s="https", u="a@b:c")) == "https://a%40b%3Ac@h/x"
    with pytest.raises(UnsafeValue, match="http or https"):
        render_url(url, values(s="file", u="a"))


def test_a_missing_value_is_kongs_message():
    with pytest.raises(TemplateError, match="^headers key x-op was not provided$"):
        render_url("http://h/api/$(headers.x-op)", values())


def test_undecodable_header_bytes_are_refused():
    with pytest.raises(UnsafeValue, match="not valid UTF-8"):
        render_url("http://h/api/$(headers.x-op)", values({"X-Op": "a\udcff"}))


def test_raw_rendering_is_kongs_whole_field():
    url = "http://h/api/$(headers.x-op)"
    assert render_url_raw(url, values({"X-Op": "http://evil/x"})) == "http://evil/x"
    assert render_url_raw(url, values({"X-Op": "chat"})) == "chat"
    assert render_url_raw("http://h/api", values()) == "http://h/api"
    with pytest.raises(TemplateError, match="was not provided"):
        render_url_raw(url, values())


# --- through the proxy ---------------------------------------------------------------------------


class Recorder:
    """An upstream that writes down the raw request line and answers 418 (passed through)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            self.seen.append({"raw_path": request.raw_path, "query": dict(request.query)})
            return web.json_response({"error": "recorded"}, status=418)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        return app


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, str]]:
    recording = Recorder()
    with ThreadedServer(recording.app) as server:
        yield recording, server.url


@pytest.fixture(autouse=True)
def forget(recorder):
    recorder[0].seen.clear()


def test_a_query_value_stays_in_its_segment(recorder):
    recording, url = recorder
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", url + "/api/$(query_params.op)")})
    with running_proxy(config) as proxy:
        climbing = post(proxy.url + "/chat", SEED_CHAT, params={"op": "../__mock__/reset"})
        injecting = post(proxy.url + "/chat?op=chat%3Fx%3D1%23", SEED_CHAT)
        dots = post(proxy.url + "/chat", SEED_CHAT, params={"op": ".."})
    assert climbing.status_code == injecting.status_code == 418  # the upstream's, passed on
    first, second = recording.seen
    assert first["raw_path"].startswith("/api/..%2F__mock__%2Freset?")
    # yarl may leave "=" unencoded in a path (it is no delimiter there); "?" and "#" stay encoded
    assert unquote(second["raw_path"].partition("?")[0]) == "/api/chat?x=1#"
    assert second["query"] == {"op": "chat?x=1#"}  # the client's own query, and nothing more
    assert dots.status_code == 400
    assert dots.json() == {"error": {"message": "query_params key op makes a '..' path segment"}}
    assert len(recording.seen) == 2  # the refused one sent nothing


@pytest.mark.parametrize("host", ["evil.example@127.0.0.1", "127.0.0.1:1/x", "127.0.0.1#"])
def test_a_header_cannot_choose_the_host(recorder, host):
    recording, url = recorder
    port = url.rsplit(":", 1)[1]
    config = declarative(
        {"/chat": ai_proxy(CHAT, "ollama", f"http://$(headers.x-host):{port}/api/chat")}
    )
    with running_proxy(config) as proxy:
        refused = post(proxy.url + "/chat", SEED_CHAT, headers={"X-Host": host})
        fine = post(proxy.url + "/chat", SEED_CHAT, headers={"X-Host": "127.0.0.1"})
    assert refused.status_code == 400
    assert refused.headers["Content-Type"].startswith("application/json")
    assert "X-Host" not in refused.text and "x-host is not a valid host name" in refused.text
    assert fine.status_code == 418 and len(recording.seen) == 1


def test_raw_templates_let_the_value_be_the_whole_url(recorder):
    recording, url = recorder
    config = declarative(
        {"/chat": ai_proxy(CHAT, "ollama", f"http://127.0.0.1:{closed_port()}/$(headers.x-op)")}
    )
    elsewhere = {"X-Op": url + "/elsewhere"}
    with running_proxy(config, kong_compat=True, url_templates="raw") as proxy:
        kong = post(proxy.url + "/chat", SEED_CHAT, headers=elsewhere)
        relative = post(proxy.url + "/chat", SEED_CHAT, headers={"X-Op": "../x"})
    for kong_compat in (False, True):  # without the opt-in, Kong mode encodes too
        with running_proxy(config, kong_compat=kong_compat) as proxy:
            encoded = post(proxy.url + "/chat", SEED_CHAT, headers=elsewhere)
        assert encoded.status_code == 502  # the configured (closed) port: the value stayed data
    assert kong.status_code == 418 and recording.seen[0]["raw_path"] == "/elsewhere"
    assert relative.status_code == 400
    assert relative.json() == {"error": {"message": "upstream_url is not a valid URL"}}
    assert len(recording.seen) == 1
