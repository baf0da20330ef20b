"""Kong's spec/03-plugins/38-ai-proxy/07-llama2_integration_spec.lua, through the proxy to a mock.

Kong's mock answers its success body only to ``Authorization: Bearer llama2-key`` with ``inputs``
containing "INST"; the right key without a prompt gets 400, any other key 401. The cases run in
both modes: they only touch behaviour Kong gets right.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from proxy_support import CHAT, COMPLETIONS, ai_proxy, declarative, kong_fixture, running_proxy

from proxyproof.mocks.app import RunningMock, run_mock

KEY = {"header_name": "Authorization", "header_value": "Bearer llama2-key"}
OVERRIDABLE = {**KEY, "allow_override": True}
OPTIONS = {"max_tokens": 256, "temperature": 1.0}


@pytest.fixture(scope="module")
def kong_mock() -> Iterator[RunningMock]:
    with run_mock("llamacpp") as mock:
        for path in ("/raw/llm/v1/chat", "/raw/llm/v1/completions"):
            key = {"Authorization": "Bearer llama2-key"}
            mock.control.script(
                match={"path": path, "headers": key, "body_contains": "INST"},
                response={"status": 200, "json": kong_fixture("llama2-raw-good.json")},
            )
            mock.control.script(
                match={"path": path, "headers": key},
                response={"status": 400, "json": {"error": "some error"}},
            )
            mock.control.script(
                match={"path": path},
                response={"status": 401, "json": kong_fixture("llama2-raw-unauthorized.json")},
            )
        yield mock


def kong_routes(mock_url: str) -> dict:
    def route(route_type: str, upstream_path: str, auth: dict) -> dict:
        return ai_proxy(
            route_type, "raw", mock_url + upstream_path, name="llama-2-7b-chat-hf", auth=auth,
            **OPTIONS,
        )  # fmt: skip

    return declarative(
        {
            "/raw/llm/v1/chat/completions": route(CHAT, "/raw/llm/v1/chat", KEY),
            "/raw/llm/v1/completions-override": route(
                COMPLETIONS, "/raw/llm/v1/completions", OVERRIDABLE
            ),
            "/raw/llm/v1/completions": route(COMPLETIONS, "/raw/llm/v1/completions", KEY),
            "/raw/llm/v1/nowhere": route(CHAT, "/raw/llm/v1/nowhere", KEY),
        }
    )


@pytest.fixture(scope="module", params=[False, True], ids=["fixed", "kong"])
def gateway(request, kong_mock) -> Iterator[tuple[str, bool]]:
    with running_proxy(kong_routes(kong_mock.url), kong_compat=request.param) as proxy:
        yield proxy.url, request.param


def call(gateway: tuple[str, bool], path: str, body: dict, **headers: str) -> httpx.Response:
    """Kong's spec sends GET with a JSON body; the fixed proxy still POSTs upstream."""
    url, _ = gateway
    return httpx.request(
        "GET", url + path, json=body, headers={"Accept": "application/json", **headers}, timeout=10
    )


def test_runs_good_request_in_chat_format(gateway, kong_mock):
    kong_mock.control.clear_journal()
    body = kong_fixture("llama2-raw-good-chat.json")
    response = call(gateway, "/raw/llm/v1/chat/completions", body)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Is a well known font.",
    }
    assert response.headers["X-Kong-LLM-Model"] == "llama2/llama-2-7b-chat-hf"
    (received,) = kong_mock.control.journal()
    assert received["method"] == ("GET" if gateway[1] else "POST")
    assert received["body"]["inputs"] == (
        "<s>[INST] <<SYS>> You are a font expert. <</SYS>> What is Sans? [/INST] "
        "Sans is a typeface. </s> <s>[INST] Is it well known? [/INST]"
    )
    assert received["body"]["parameters"] == {
        "max_new_tokens": 256,
        "temperature": 1.0,
        "stream": False,
    }


def test_runs_good_request_in_completions_format(gateway):
    body = kong_fixture("llama2-raw-good-completions.json")
    response = call(gateway, "/raw/llm/v1/completions", body)
    assert response.status_code == 200
    assert response.json()["choices"][0]["text"] == "Is a well known font."


@pytest.mark.parametrize(
    ("path", "client_key", "status"),
    [
        ("/raw/llm/v1/completions-override", "Bearer llama2-key", 200),  # right auth, override
        ("/raw/llm/v1/completions-override", "Bearer wrong", 401),  # wrong auth, override
        ("/raw/llm/v1/completions", "Bearer llama2-key", 200),  # right auth, no override
        ("/raw/llm/v1/completions", "Bearer wrong", 200),  # config key replaces the client's
    ],
)
def test_client_auth(gateway, path, client_key, status):
    body = kong_fixture("llama2-raw-good-completions.json")
    response = call(gateway, path, body, Authorization=client_key)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {"error": "Model requires a Pro subscription."}
    else:
        assert response.json()["choices"][0]["text"] == "Is a well known font."


def test_upstream_404_passes_through(gateway):
    response = call(gateway, "/raw/llm/v1/nowhere", kong_fixture("llama2-raw-good-chat.json"))
    assert response.status_code == 404
    assert response.content  # llama.cpp's own "File Not Found" error body, untouched
    assert "X-Kong-LLM-Model" not in response.headers


def test_upstream_401_passes_through(kong_mock, gateway):
    url, kong_compat = gateway
    config = declarative(
        {"/chat": ai_proxy(CHAT, "raw", kong_mock.url + "/raw/llm/v1/chat",
                           auth={"header_name": "Authorization", "header_value": "Bearer wrong"})}
    )  # fmt: skip
    with running_proxy(config, kong_compat=kong_compat) as proxy:
        response = httpx.post(proxy.url + "/chat", json=kong_fixture("llama2-raw-good-chat.json"))
    assert response.status_code == 401
    assert response.json() == {"error": "Model requires a Pro subscription."}
    assert response.headers["Content-Type"].startswith("application/json")
