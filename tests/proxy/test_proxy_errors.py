"""Bad input and failing upstreams, each with its exact status, body and headers
(docs/kong-behaviour.md#request-body, #request-checks, #upstream-failures)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from proxy_support import (
    CHAT,
    COMPLETIONS,
    SEED_CHAT,
    SEED_COMPLETION,
    FailingResolver,
    ai_proxy,
    closed_port,
    declarative,
    post,
    running_proxy,
)

from proxyproof.mocks.app import RunningMock, run_mock

JSON_UTF8 = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def ollama() -> Iterator[RunningMock]:
    with run_mock("ollama") as mock:
        yield mock


@pytest.fixture(scope="module")
def proxy(ollama) -> Iterator[str]:
    config = declarative(
        {
            "/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat"),
            "/completions": ai_proxy(COMPLETIONS, "ollama", ollama.url + "/api/generate"),
            "/raw": ai_proxy(CHAT, "raw", ollama.url + "/raw"),
            "/openai": ai_proxy(CHAT, "openai", ollama.url + "/v1/chat/completions"),
        },
        service={"read_timeout": 1000, "retries": 2},  # room for a loaded CI machine
    )
    with running_proxy(config) as server:
        yield server.url


@pytest.fixture(autouse=True)
def clean_mock(ollama):
    ollama.control.reset()


def assert_local_error(response: httpx.Response, status: int, message: str) -> None:
    """A plugin error the proxy answered itself."""
    assert response.status_code == status
    assert response.headers["Content-Type"] == JSON_UTF8
    assert response.json() == {"error": {"message": message}}
    assert response.headers["X-Kong-Response-Latency"].isdigit()
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Kong-Request-Id"])
    assert "X-Kong-LLM-Model" not in response.headers


def assert_core_error(response: httpx.Response, status: int, message: str) -> None:
    """Kong's core error shape: message and request id."""
    assert response.status_code == status
    assert response.headers["Content-Type"] == JSON_UTF8
    assert response.json() == {
        "message": message,
        "request_id": response.headers["X-Kong-Request-Id"],
    }
    assert response.headers["X-Kong-Response-Latency"].isdigit()


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"not json", "application/json"),
        (b"", "application/json"),
        (b"", None),
        (b'{"messages": "What is 1+1?"}', "application/json"),
        (b'{"prompt": "x"}', "text/plain"),
        (b"[]", "application/json"),
    ],
    ids=["not-json", "empty", "empty-no-type", "messages-not-array", "text-plain", "array"],
)
def test_body_without_valid_prompts(proxy, ollama, raw, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = post(proxy + "/chat", raw=raw, headers=headers)
    assert_local_error(response, 400, "request body doesn't contain valid prompts")
    assert ollama.control.journal() == []  # nothing went upstream


def test_both_prompt_and_messages(proxy):
    response = post(proxy + "/chat", {**SEED_CHAT, **SEED_COMPLETION})
    assert_local_error(response, 400, "request matches multiple LLM request formats")


def test_chat_body_on_completions_route_and_the_reverse(proxy):
    assert_local_error(
        post(proxy + "/completions", SEED_CHAT),
        400,
        "[llm/v1/chat] message format is not compatible with [llm/v1/completions] route type",
    )
    assert_local_error(
        post(proxy + "/chat", SEED_COMPLETION),
        400,
        "[llm/v1/completions] message format is not compatible with [llm/v1/chat] route type",
    )


def test_a_different_model_in_the_body(proxy):
    response = post(proxy + "/chat", {**SEED_CHAT, "model": "gpt-4"})
    assert_local_error(response, 400, "cannot use own model - must be: llama2")


def test_raw_format_refuses_non_string_content(proxy):
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    response = post(proxy + "/raw", body)
    assert_local_error(response, 400, "error transforming to llama2://llm/v1/chat/raw")


def test_no_route(proxy):
    response = post(proxy + "/nothing-here", SEED_CHAT)
    assert response.status_code == 404
    assert response.json() == {"message": "no Route matched with those values"}
    assert response.headers["Content-Type"] == JSON_UTF8


def test_unreachable_upstream_is_502():
    config = declarative(
        {"/chat": ai_proxy(CHAT, "ollama", f"http://127.0.0.1:{closed_port()}/api/chat")}
    )
    with running_proxy(config) as proxy:
        response = post(proxy.url + "/chat", SEED_CHAT)
    assert_core_error(response, 502, "An invalid response was received from the upstream server")


def test_upstream_timeout_is_504(proxy, ollama):
    ollama.control.script(match={"path": "/api/chat"}, fault={"kind": "latency", "seconds": 5})
    response = post(proxy + "/chat", SEED_CHAT)
    assert_core_error(response, 504, "The upstream server is timing out")
    assert len(ollama.control.journal()) == 1  # a POST that was sent is not retried


def test_dns_failure_is_503():
    resolver = FailingResolver()
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", "http://llama.example/api/chat")})
    with running_proxy(config, resolver=resolver) as proxy:
        response = post(proxy.url + "/chat", SEED_CHAT)
    assert_core_error(response, 503, "name resolution failed")
    assert resolver.asked == ["llama.example"]


def test_upstream_reset_is_502(proxy, ollama):
    ollama.control.script(match={"path": "/api/chat"}, fault={"kind": "empty_response"})
    response = post(proxy + "/chat", SEED_CHAT)
    assert_core_error(response, 502, "An invalid response was received from the upstream server")


@pytest.mark.parametrize(
    ("path", "upstream", "reply", "reason"),
    [
        ("/chat", "/api/chat", {"body": "<html>oops</html>", "content_type": "text/html"},
         "failed to decode ollama response"),
        ("/raw", "/raw", {"json": {"generated": "x"}},
         "cannot parse response from llama2 endpoint"),
        ("/openai", "/v1/chat/completions", {"json": {"id": "x"}},
         "'choices' not in llm/v1/chat response"),
    ],
)  # fmt: skip
def test_untranslatable_200_is_500(proxy, ollama, path, upstream, reply, reason):
    ollama.control.script(match={"path": upstream}, response={"status": 200, **reply})
    response = post(proxy + path, SEED_CHAT)
    assert response.status_code == 500
    assert response.json() == {
        "error": {"message": f"transformation failed from type llama2://llm/v1/chat: {reason}"}
    }
    assert response.headers["Content-Type"] == JSON_UTF8
    assert response.headers["X-Kong-LLM-Model"] == "llama2/llama2"
    assert response.headers["X-Kong-Upstream-Latency"].isdigit()


def test_upstream_errors_pass_through_with_status_body_and_type(proxy, ollama):
    ollama.control.script(
        match={"path": "/api/chat"},
        response={
            "status": 429,
            "body": "slow down",
            "content_type": "text/plain; charset=utf-8",
            "headers": {"Retry-After": "3"},
        },
    )
    response = post(proxy + "/chat", SEED_CHAT)
    assert response.status_code == 429
    assert response.content == b"slow down"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Kong-Upstream-Latency"].isdigit()
    assert "X-Kong-LLM-Model" not in response.headers
    assert "X-Kong-Response-Latency" not in response.headers


def test_upstream_html_500_passes_through_gzipped_when_accepted(proxy, ollama):
    page = "<html><body>Internal Server Error</body></html>"
    ollama.control.script(
        match={"path": "/api/chat"},
        response={"status": 500, "body": page, "content_type": "text/html"},
    )
    response = post(proxy + "/chat", SEED_CHAT, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 500
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.text == page  # httpx inflated it


def test_transformation_failure_is_gzipped_when_accepted(proxy, ollama):
    ollama.control.script(match={"path": "/api/chat"}, response={"status": 200, "body": "nope"})
    headers = {"Accept-Encoding": "gzip"}
    with httpx.stream("POST", proxy + "/chat", json=SEED_CHAT, headers=headers) as response:
        compressed = b"".join(response.iter_raw())
    assert response.status_code == 500
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in response.headers
    assert json.loads(gzip.decompress(compressed)) == {
        "error": {"message": "transformation failed from type llama2://llm/v1/chat: "
                  "failed to decode ollama response"}
    }  # fmt: skip


def test_oversized_body(ollama):
    config = declarative(
        {"/chat": {**ai_proxy(CHAT, "ollama", ollama.url + "/api/chat"),
                   "max_request_body_size": 64}}
    )  # fmt: skip
    with running_proxy(config) as proxy:
        response = post(proxy.url + "/chat", {"messages": [{"role": "user", "content": "x" * 99}]})
    assert_local_error(response, 400, "request body doesn't contain valid prompts")


def test_route_without_ai_plugin_is_501(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")})
    config["services"][0]["routes"].append({"name": "plain", "paths": ["/plain"]})
    with running_proxy(config) as proxy:
        response = post(proxy.url + "/plain", SEED_CHAT)
    assert response.status_code == 501
    assert "has no ai-proxy plugin" in response.json()["message"]


def test_a_reserved_invalid_name_is_a_dns_failure_without_asking_the_network():
    """RFC 6761: ``.invalid`` never resolves; the proxy says so at once (503, Kong's message)."""
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", "http://upstream.invalid/api/chat")})
    with running_proxy(config) as proxy:
        reply = httpx.post(proxy.url + "/chat", json=SEED_CHAT, timeout=10)
    assert reply.status_code == 503
    assert reply.json()["message"] == "name resolution failed"
