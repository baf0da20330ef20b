"""The upstream request as pure values: URL and port, query, headers, credentials."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, MultiDict

from proxyproof.proxy_impl import auth, forwarding
from proxyproof.proxy_impl.behaviour import FIXED, KONG
from proxyproof.proxy_impl.model import Auth


def url_and_query(upstream_url, client_query=(), behaviour=FIXED):
    url, query = forwarding.target_url(upstream_url, MultiDict(client_query), behaviour)
    return str(url), list(query.items())


@pytest.mark.parametrize(
    ("given", "fixed", "kong"),
    [
        ("http://llm.local/api/chat", "http://llm.local/api/chat", "http://llm.local:443/api/chat"),
        ("https://llm.local/v1", "https://llm.local/v1", "https://llm.local/v1"),
        ("http://llm.local:8080", "http://llm.local:8080/", "http://llm.local:8080/"),
    ],
)
def test_port_default_and_missing_path(given, fixed, kong):
    assert url_and_query(given)[0] == fixed
    assert url_and_query(given, behaviour=KONG)[0] == kong


def test_query_strings():
    given = "http://h:1/models/x?wait_for_model=true"
    assert url_and_query(given, [("a", "1")]) == (
        "http://h:1/models/x",
        [("wait_for_model", "true"), ("a", "1")],
    )
    assert url_and_query(given, [("a", "1")], behaviour=KONG)[1] == [("a", "1")]


def test_headers_forwarded_and_set():
    client = CIMultiDict(
        {
            "Host": "gw",
            "Content-Type": "text/plain",
            "Content-Length": "5",
            "Accept-Encoding": "br",
            "Connection": "keep-alive",
            "X-Custom": "1",
            "Authorization": "Bearer client",
        }
    )
    kw = dict(
        client_ip="10.0.0.1", client_host="gw:8000", client_port=8000, client_path="/chat",
        request_id="rid",
    )  # fmt: skip
    fixed = forwarding.request_headers(client, behaviour=FIXED, **kw)
    assert fixed["Content-Type"] == "application/json"
    assert fixed["Accept-Encoding"] == "gzip, identity"
    assert fixed["X-Custom"] == "1" and fixed["Authorization"] == "Bearer client"
    assert "Host" not in fixed and "Connection" not in fixed and "Content-Length" not in fixed
    assert fixed["X-Forwarded-For"] == "10.0.0.1"
    assert fixed["X-Forwarded-Host"] == "gw"
    assert fixed["X-Kong-Request-Id"] == "rid"
    assert forwarding.request_headers(client, behaviour=KONG, **kw)["Accept-Encoding"] == "br"


def test_header_credential_rules():
    config = Auth(header_name="Authorization", header_value="Bearer config")
    override = Auth(header_name="Authorization", header_value="Bearer config", allow_override=True)
    client = CIMultiDict({"authorization": "Bearer client"})
    for rule, expected in ((config, "Bearer config"), (override, "Bearer client")):
        headers = CIMultiDict(client)
        auth.apply_header(rule, client, headers)
        assert headers.getall("Authorization") == [expected]
    headers = CIMultiDict()
    auth.apply_header(override, CIMultiDict(), headers)
    assert headers["Authorization"] == "Bearer config"


def test_query_credential_rules():
    rule = Auth(param_name="key", param_value="config", param_location="query")
    query = MultiDict([("key", "client"), ("a", "1")])
    auth.apply_query(rule, MultiDict(query), query)
    assert sorted(query.items()) == [("a", "1"), ("key", "config")]
    override = Auth(param_name="key", param_value="config", param_location="query",
                    allow_override=True)  # fmt: skip
    query = MultiDict([("key", "client")])
    auth.apply_query(override, MultiDict(query), query)
    assert list(query.items()) == [("key", "client")]


@pytest.mark.parametrize("fmt", ["raw", "ollama", "openai"])
def test_body_credential_rules(fmt):
    rule = Auth(param_name="apikey", param_value="config", param_location="body")
    override = Auth(param_name="apikey", param_value="config", param_location="body",
                    allow_override=True)  # fmt: skip
    client = {"apikey": None}
    upstream_body: dict = {}
    auth.apply_body(rule, client, upstream_body, fmt, FIXED)
    assert upstream_body == {"apikey": "config"}
    auth.apply_body(override, client, upstream_body, fmt, FIXED)
    assert upstream_body == {"apikey": None}  # a JSON null counts as the client's value
    kong: dict = {}
    auth.apply_body(rule, {}, kong, fmt, KONG)
    assert kong == ({"apikey": "config"} if fmt == "openai" else {})


def test_redaction_masks_a_body_credential():
    rule = Auth(param_name="apikey", param_value="config", param_location="body")
    assert auth.redact({"apikey": "client-secret", "prompt": "x"}, rule) == {
        "apikey": "[redacted]",
        "prompt": "x",
    }
