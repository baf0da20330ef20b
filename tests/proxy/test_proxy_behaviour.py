"""Through the proxy to the mocks: response headers, gzip, credentials by header, query and
body, option precedence, model rules, templates, analytics, and the Kong-compatibility quirks."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from proxy_support import (
    CHAT,
    COMPLETIONS,
    SEED_CHAT,
    SEED_COMPLETION,
    ai_proxy,
    declarative,
    post,
    running_proxy,
)

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.serving import ThreadedServer


@pytest.fixture(scope="module")
def ollama() -> Iterator[RunningMock]:
    with run_mock("ollama", models=("llama2", "mistral")) as mock:
        yield mock


@pytest.fixture(scope="module")
def llamacpp() -> Iterator[RunningMock]:
    with run_mock("llamacpp") as mock:
        yield mock


@pytest.fixture(scope="module")
def openai() -> Iterator[RunningMock]:
    with run_mock("openai") as mock:
        yield mock


@pytest.fixture(autouse=True)
def clean_mocks(ollama, llamacpp, openai):
    for mock in (ollama, llamacpp, openai):
        mock.control.reset()


def only_request(mock: RunningMock) -> dict:
    (received,) = mock.control.journal()
    return received


# --- headers and encoding ---------------------------------------------------------------------


def test_headers_on_a_translated_200(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")})
    with running_proxy(config) as proxy:
        response = post(proxy.url + "/chat", SEED_CHAT)
    assert response.status_code == 200
    assert response.headers["X-Kong-LLM-Model"] == "llama2/llama2"
    assert response.headers["X-Kong-Upstream-Latency"].isdigit()
    assert response.headers["X-Kong-Proxy-Latency"].isdigit()
    assert "X-Kong-Response-Latency" not in response.headers
    assert "Content-Encoding" not in response.headers
    assert int(response.headers["Content-Length"]) == len(response.content)
    request_id = response.headers["X-Kong-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert only_request(ollama)["headers"]["X-Kong-Request-Id"] == request_id


UPSTREAM_HEADERS = {"X-Upstream-Trace": "t1", "Cache-Control": "no-store", "Set-Cookie": "s=1"}


def gzipped_ollama_with_headers() -> web.Application:
    """An Ollama stand-in that sends its own headers, gzipped, streamed or not."""
    done = {"model": "llama2", "done": True, "done_reason": "stop", "eval_count": 1}

    async def chat(request: web.Request) -> web.StreamResponse:
        streamed = (await request.json())["stream"]
        lines = [{"model": "llama2", "message": {"role": "assistant", "content": "2"}}, done]
        content_type = "application/x-ndjson" if streamed else "application/json"
        response = web.StreamResponse(headers={**UPSTREAM_HEADERS, "Content-Type": content_type})
        response.enable_compression(web.ContentCoding.gzip)
        await response.prepare(request)
        for line in lines if streamed else [{**lines[0], **done}]:
            await response.write(json.dumps(line).encode() + b"\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    return app


@pytest.mark.parametrize("kong_compat", [False, True], ids=["fixed", "kong"])
def test_streamed_and_plain_200s_forward_the_same_upstream_headers(kong_compat):
    with ThreadedServer(gzipped_ollama_with_headers) as upstream:
        config = declarative({"/chat": ai_proxy(CHAT, "ollama", upstream.url + "/api/chat")})
        with running_proxy(config, kong_compat=kong_compat) as proxy:
            plain = post(proxy.url + "/chat", SEED_CHAT)
            streamed = post(proxy.url + "/chat", {**SEED_CHAT, "stream": True})
    assert (plain.status_code, streamed.status_code) == (200, 200)
    assert plain.headers["Content-Type"].startswith("application/json")
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    assert int(plain.headers["Content-Length"]) == len(plain.content)
    assert "Content-Length" not in streamed.headers
    for response in (plain, streamed):
        assert response.headers["X-Upstream-Trace"] == "t1"
        assert response.headers["Cache-Control"] == "no-store"
        assert ("Set-Cookie" in response.headers) is kong_compat  # fixed drops it on a 200
        assert "Content-Encoding" not in response.headers  # inflated, so not gzip any more
        assert response.headers["X-Kong-LLM-Model"] == "llama2/llama2"
        assert response.headers["X-Kong-Upstream-Latency"].isdigit()
    assert json.loads(plain.content)["choices"][0]["message"]["content"] == "2"
    assert b"data: [DONE]" in streamed.content


def test_model_name_header_can_be_turned_off_but_kong_debug_asks_for_it(ollama):
    plugin = {**ai_proxy(CHAT, "ollama", ollama.url + "/api/chat"), "model_name_header": False}
    with running_proxy(declarative({"/chat": plugin})) as proxy:
        assert "X-Kong-LLM-Model" not in post(proxy.url + "/chat", SEED_CHAT).headers
        debug = post(proxy.url + "/chat", SEED_CHAT, headers={"Kong-Debug": "1"})
    assert debug.headers["X-Kong-LLM-Model"] == "llama2/llama2"


def test_gzip_to_clients_that_accept_it(llamacpp):
    config = declarative({"/chat": ai_proxy(CHAT, "raw", llamacpp.url + "/raw")})
    with running_proxy(config) as proxy:
        plain = post(proxy.url + "/chat", SEED_CHAT)
        with httpx.stream(
            "POST",
            proxy.url + "/chat",
            json=SEED_CHAT,
            headers={"Accept-Encoding": "gzip;q=1.0, identity;q=0.5"},
        ) as zipped:
            compressed = b"".join(zipped.iter_raw())  # fmt: skip
        refused = post(proxy.url + "/chat", SEED_CHAT, headers={"Accept-Encoding": "gzip;q=0"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in zipped.headers
    assert gzip.decompress(compressed) == plain.content
    assert "Content-Encoding" not in refused.headers


def test_upstream_request_shape_fixed_and_kong(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat?keep=me")})
    for kong_compat in (False, True):
        ollama.control.clear_journal()
        with running_proxy(config, kong_compat=kong_compat) as proxy:
            response = httpx.request(
                "PUT", proxy.url + "/chat?client=1", json=SEED_CHAT,
                headers={"Accept-Encoding": "br", "X-Trace": "t"}, timeout=10,
            )  # fmt: skip
        # Kong forwards the client's PUT, which Ollama refuses (passed through as it came)
        assert response.status_code == (405 if kong_compat else 200)
        received = only_request(ollama)
        assert received["method"] == ("PUT" if kong_compat else "POST")
        query = {"client": "1"} if kong_compat else {"keep": "me", "client": "1"}
        assert received["query"] == query
        assert received["headers"]["Content-Type"] == "application/json"
        encoding = "br" if kong_compat else "gzip, identity"
        assert received["headers"]["Accept-Encoding"] == encoding
        assert received["headers"]["X-Trace"] == "t"
        assert received["headers"]["X-Forwarded-Path"] == "/chat"


def test_set_cookie_is_cleared_on_success_unless_kong(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")})
    reply = {"model": "llama2", "message": {"role": "assistant", "content": "2"}, "done": True}
    ollama.control.script(
        match={"path": "/api/chat"},
        response={"status": 200, "json": reply, "headers": {"Set-Cookie": "session=upstream"}},
    )
    for kong_compat, kept in ((False, False), (True, True)):
        with running_proxy(config, kong_compat=kong_compat) as proxy:
            response = post(proxy.url + "/chat", SEED_CHAT)
        assert response.status_code == 200
        assert ("set-cookie" in response.headers) is kept


# --- credentials ------------------------------------------------------------------------------


def test_query_credential(openai):
    auth = {"param_name": "key", "param_value": "config-key", "param_location": "query"}
    override = {**auth, "allow_override": True}
    config = declarative(
        {
            "/fixed-key": ai_proxy(CHAT, "openai", openai.url + "/v1/chat/completions", auth=auth),
            "/client-key": ai_proxy(CHAT, "openai", openai.url + "/v1/chat/completions",
                                    auth=override),
        }
    )  # fmt: skip
    with running_proxy(config) as proxy:
        for path, expected in (("/fixed-key", "config-key"), ("/client-key", "wrong")):
            openai.control.clear_journal()
            assert post(proxy.url + path + "?key=wrong&x=1", SEED_CHAT).status_code == 200
            assert only_request(openai)["query"] == {"key": expected, "x": "1"}


@pytest.mark.parametrize("kong_compat", [False, True], ids=["fixed", "kong"])
def test_body_credential(llamacpp, openai, kong_compat):
    auth = {"param_name": "apikey", "param_value": "config-key", "param_location": "body"}
    config = declarative(
        {
            "/raw": ai_proxy(CHAT, "raw", llamacpp.url + "/raw", auth=auth),
            "/openai": ai_proxy(CHAT, "openai", openai.url + "/v1/chat/completions", auth=auth),
        }
    )
    log: list[str] = []
    with running_proxy(config, kong_compat=kong_compat, log=log) as proxy:
        client_body = {**SEED_CHAT, "apikey": "client-secret"}
        assert post(proxy.url + "/raw", client_body).status_code == 200
        assert post(proxy.url + "/openai", client_body).status_code == 200
    raw_body = only_request(llamacpp)["body"]
    openai_body = only_request(openai)["body"]
    # Kong writes the field after translating, so raw (and ollama) upstreams never see it
    assert raw_body.get("apikey") == (None if kong_compat else "config-key")
    assert openai_body["apikey"] == "config-key"
    assert not any("config-key" in line or "client-secret" in line for line in log)


def test_secrets_never_reach_clients_or_logs(ollama):
    auth = {"header_name": "Authorization", "header_value": "Bearer top-secret"}
    plugin = ai_proxy(CHAT, "ollama", ollama.url + "/api/chat", auth=auth)
    plugin["logging"] = {"log_statistics": True, "log_payloads": True}
    log: list[str] = []
    ollama.control.script(match={"path": "/api/chat"}, response={"status": 401, "json": {}})
    with running_proxy(declarative({"/chat": plugin}), log=log) as proxy:
        denied = post(proxy.url + "/chat", SEED_CHAT)
    assert only_request(ollama)["headers"]["Authorization"] == "Bearer top-secret"
    assert denied.status_code == 401
    assert "top-secret" not in denied.text + str(denied.headers) + "".join(log)


# --- options and models -----------------------------------------------------------------------


def test_config_options_override_the_client_and_the_rest_passes(llamacpp, ollama):
    config = declarative(
        {
            "/raw": ai_proxy(CHAT, "raw", llamacpp.url + "/raw", temperature=0.7, max_tokens=64),
            "/ollama": ai_proxy(COMPLETIONS, "ollama", ollama.url + "/api/generate", top_p=0.9),
        }
    )
    client = {"temperature": 0.1, "top_k": 5, "top_p": 0.2, "max_tokens": 9}
    with running_proxy(config) as proxy:
        assert post(proxy.url + "/raw", {**SEED_CHAT, **client}).status_code == 200
        assert post(proxy.url + "/ollama", {**SEED_COMPLETION, **client}).status_code == 200
    assert only_request(llamacpp)["body"]["parameters"] == {
        "max_new_tokens": 64, "temperature": 0.7, "top_p": 0.2, "top_k": 5, "stream": False,
    }  # fmt: skip
    assert only_request(ollama)["body"]["options"] == {
        "num_predict": 9, "temperature": 0.1, "top_p": 0.9, "top_k": 5,
    }  # fmt: skip


def test_model_from_the_client_does_not_leak_between_requests(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat", name=None)})
    with running_proxy(config) as proxy:
        for model in ("llama2", "mistral") * 5:
            response = post(proxy.url + "/chat", {**SEED_CHAT, "model": model})
            assert response.status_code == 200
            assert response.headers["X-Kong-LLM-Model"] == f"llama2/{model}"
            assert ollama.control.journal()[-1]["body"]["model"] == model
        missing = post(proxy.url + "/chat", SEED_CHAT)
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == (
        "model parameter not found in request, nor in gateway configuration"
    )


def test_model_and_url_templates(ollama):
    config = declarative(
        {
            "~/models/(?<model>[a-z0-9]+)/chat$": ai_proxy(
                CHAT, "ollama", ollama.url + "/api/$(headers.x-ollama-api)",
                name="$(uri_captures.model)",
            )
        }
    )  # fmt: skip
    with running_proxy(config) as proxy:
        response = post(proxy.url + "/models/mistral/chat", SEED_CHAT,
                        headers={"X-Ollama-Api": "chat"})  # fmt: skip
        missing = post(proxy.url + "/models/mistral/chat", SEED_CHAT)
    assert response.status_code == 200
    assert response.headers["X-Kong-LLM-Model"] == "llama2/mistral"
    assert only_request(ollama)["body"]["model"] == "mistral"
    assert missing.status_code == 400
    assert missing.json() == {"error": {"message": "headers key x-ollama-api was not provided"}}


# --- streaming decisions (the relay itself is tested with the stream tests) --------------------


def test_stream_null_streams_only_in_kong_mode(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")})
    body = {**SEED_CHAT, "stream": None}
    for kong_compat, streams in ((False, False), (True, True)):
        ollama.control.clear_journal()
        with running_proxy(config, kong_compat=kong_compat) as proxy:
            response = post(proxy.url + "/chat", body)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith(
            "text/event-stream" if streams else "application/json"
        )
        assert only_request(ollama)["body"]["stream"] is streams


def test_a_stream_request_answered_non_200_is_passed_through(ollama):
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")})
    ollama.control.script(
        match={"path": "/api/chat"},
        response={"status": 404, "json": {"error": "model 'llama2' not found"}},
    )
    with running_proxy(config) as proxy:
        response = post(proxy.url + "/chat", {**SEED_CHAT, "stream": True})
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "model 'llama2' not found"}


def test_response_streaming_deny(ollama):
    plugin = {**ai_proxy(CHAT, "ollama", ollama.url + "/api/chat"), "response_streaming": "deny"}
    with running_proxy(declarative({"/chat": plugin})) as proxy:
        response = post(proxy.url + "/chat", {**SEED_CHAT, "stream": True})
    assert response.status_code == 400
    message = "response streaming is not enabled for this LLM"
    assert response.json() == {"error": {"message": message}}


# --- Kong-compatibility quirks through the proxy ----------------------------------------------


def test_empty_messages_beside_a_prompt(ollama):
    config = declarative({"/gen": ai_proxy(COMPLETIONS, "ollama", ollama.url + "/api/generate")})
    body = {"messages": [], "prompt": "What is 1+1?"}
    with running_proxy(config) as fixed, running_proxy(config, kong_compat=True) as kong:
        ok = post(fixed.url + "/gen", body)
        plain = post(kong.url + "/gen", body)
    assert ok.status_code == 200
    assert "messages" not in only_request(ollama)["body"]
    assert plain.status_code == 400
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert plain.text == (
        "cannot run raw 'prompt' and chat history 'messages' requests at the same time - "
        "refer to schema"
    )


def test_kong_drops_assistant_turns_and_keeps_the_sys_typo(llamacpp):
    config = declarative(
        {"/chat": ai_proxy(CHAT, "raw", llamacpp.url + "/raw"),
         "/gen": ai_proxy(COMPLETIONS, "raw", llamacpp.url + "/raw")}
    )  # fmt: skip
    conversation = {"messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
    ]}  # fmt: skip
    with running_proxy(config, kong_compat=True) as proxy:
        assert post(proxy.url + "/chat", conversation).status_code == 200
        assert post(proxy.url + "/gen", SEED_COMPLETION).status_code == 200
    chat, completion = llamacpp.control.journal()
    assert chat["body"]["inputs"] == (
        "<s>[INST] <<SYS>> S <</SYS>> Q1 [/INST] <s>[INST] Q2 [/INST]"
    )
    assert "<<SYS>> What is 1+1? [/INST]" in completion["body"]["inputs"]


# --- analytics -------------------------------------------------------------------------------


def test_analytics_log_line(ollama):
    plugin = ai_proxy(CHAT, "ollama", ollama.url + "/api/chat", input_cost=10, output_cost=20)
    plugin["logging"] = {"log_statistics": True, "log_payloads": True}
    log: list[str] = []
    with running_proxy(declarative({"/chat": plugin}), log=log) as proxy:
        response = post(proxy.url + "/chat", SEED_CHAT)
    usage = response.json()["usage"]
    (line,) = [json.loads(entry) for entry in log]
    assert line["status"] == 200 and line["request_id"] == response.headers["X-Kong-Request-Id"]
    proxy_log = line["ai"]["proxy"]
    assert proxy_log["meta"]["provider_name"] == "llama2"
    assert proxy_log["meta"]["request_model"] == "llama2"
    assert proxy_log["meta"]["response_model"] == "llama2"
    assert isinstance(proxy_log["meta"]["llm_latency"], int)
    assert proxy_log["usage"]["prompt_tokens"] == usage["prompt_tokens"]
    assert proxy_log["usage"]["completion_tokens"] == usage["completion_tokens"]
    assert proxy_log["usage"]["total_tokens"] == usage["total_tokens"]
    expected_cost = (usage["prompt_tokens"] * 10 + usage["completion_tokens"] * 20) / 1e6
    assert proxy_log["usage"]["cost"] == pytest.approx(expected_cost)
    assert json.loads(proxy_log["payload"]["request"]) == SEED_CHAT
    assert json.loads(proxy_log["payload"]["response"]) == response.json()


def test_no_analytics_without_log_statistics(ollama):
    log: list[str] = []
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")})
    with running_proxy(config, log=log) as proxy:
        post(proxy.url + "/chat", SEED_CHAT)
    (line,) = [json.loads(entry) for entry in log]
    assert "ai" not in line and line["status"] == 200


def test_analytics_of_a_streamed_answer(ollama):
    plugin = ai_proxy(CHAT, "ollama", ollama.url + "/api/chat")
    plugin["logging"] = {"log_statistics": True}
    log: list[str] = []
    with running_proxy(declarative({"/chat": plugin}), log=log) as proxy:
        response = post(proxy.url + "/chat", {**SEED_CHAT, "stream": True})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    upstream_reply = ollama.control.journal()[-1]
    assert upstream_reply["body"]["stream"] is True
    (line,) = [json.loads(entry) for entry in log]
    usage = line["ai"]["proxy"]["usage"]
    assert line["status"] == 200
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert line["ai"]["proxy"]["meta"]["response_model"] == "llama2"
