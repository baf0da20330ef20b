"""POST /config is atomic (issue 9): a bad config is refused whole with every problem listed and
changes nothing; a stream in flight finishes on the config it started with while new requests
already see the new one; a YAML error in a posted config never echoes a secret."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web
from proxy_support import CHAT, SEED_CHAT, ai_proxy, declarative

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.proxy_impl.admin import proxy_and_admin_apps
from proxyproof.serving import ThreadedServer

SECRET = "sk-admin-atomic-42"
NO_ROUTE = {"message": "no Route matched with those values"}


@dataclass
class Live:
    proxy: str
    admin: str
    http: httpx.Client

    def post_config(self, **kwargs) -> httpx.Response:
        return self.http.post(f"{self.admin}/config", **kwargs)

    def status_hash(self) -> str:
        return self.http.get(self.admin + "/status").json()["configuration_hash"]


@pytest.fixture(scope="module")
def ollama() -> Iterator[RunningMock]:
    with run_mock("ollama") as mock:
        yield mock


@pytest.fixture
def live() -> Iterator[Live]:
    proxy_factory, admin_factory = proxy_and_admin_apps()
    with (
        ThreadedServer(proxy_factory) as proxy,
        ThreadedServer(admin_factory) as admin,
        httpx.Client(trust_env=False, timeout=10, headers={"Accept-Encoding": "identity"}) as http,
    ):
        yield Live(proxy.url, admin.url, http)


def ollama_route(upstream: str, path: str) -> dict:
    auth = {"header_name": "Authorization", "header_value": f"Bearer {SECRET}"}
    return ai_proxy(CHAT, "ollama", upstream + "/api/chat", auth=auth)


# --- a refused config ---------------------------------------------------------------------------


def test_a_bad_config_is_refused_whole_with_every_problem_listed(live, ollama):
    good = declarative({"/chat": ollama_route(ollama.url, "/chat")})
    assert live.post_config(json=good).status_code == 201
    served = live.status_hash()

    bad = declarative(
        {"/chat": ollama_route(ollama.url, "/chat"), "/other": ollama_route(ollama.url, "/o")},
        service={"retries": 40000, "read_timeout": 0},
    )
    routes = bad["services"][0]["routes"]
    routes[0]["paths"] = ["/x", "~/c/(a+)+b$"]
    routes[1]["plugins"][0]["config"]["auth"]["header_value"] = f"Bearer {SECRET}\r\nX-Evil: 1"
    routes[1]["surprise"] = True
    answer = live.post_config(json=bad)

    assert answer.status_code == 400
    body = answer.json()
    assert SECRET not in answer.text
    service = body["fields"]["services"][0]
    assert service["retries"] == "value should be between 0 and 32767"
    assert service["read_timeout"] == "value should be between 1 and 2147483646"
    assert service["routes"][0]["paths"][1].startswith("regex can backtrack catastrophically")
    assert service["routes"][1]["surprise"] == "unknown field"
    auth = service["routes"][1]["plugins"][0]["config"]["auth"]
    assert auth["header_value"].startswith("must not contain CR, LF")
    flattened = {(entry["entity_type"], error.get("field"))
                 for entry in body["flattened_errors"] for error in entry["errors"]}  # fmt: skip
    assert flattened == {
        ("service", "retries"), ("service", "read_timeout"), ("route", "paths.2"),
        ("route", "surprise"), ("plugin", "config.auth.header_value"),
    }  # fmt: skip

    assert live.status_hash() == served  # nothing changed
    assert live.http.post(live.proxy + "/chat", json=SEED_CHAT).status_code == 200


@pytest.mark.parametrize("as_yaml_body", [False, True])
def test_a_yaml_error_on_a_secret_line_is_located_not_quoted(live, as_yaml_body):
    text = (
        '_format_version: "3.0"\n'
        "routes:\n"
        "  - paths: [/chat]\n"
        "    plugins:\n"
        "      - name: ai-proxy\n"
        "        config:\n"
        "          auth: {header_name: Authorization}\n"
        f"          header_value: Bearer {SECRET}: broken\n"
    )
    if as_yaml_body:
        answer = live.post_config(content=text, headers={"Content-Type": "application/yaml"})
    else:
        answer = live.post_config(json={"config": text})
    assert answer.status_code == 400
    assert SECRET not in answer.text
    error = answer.json()["fields"]["error"]
    assert error.startswith("failed parsing declarative configuration: line 8, column ")
    assert "(in header_value, value not shown)" in error


# --- a stream in flight across the swap ---------------------------------------------------------


def chunk(content: str, finish: str | None = None) -> bytes:
    delta = {"content": content} if content else {}
    event = {"id": "held", "object": "chat.completion.chunk", "created": 1, "model": "llama2",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return f"data: {json.dumps(event)}\n\n".encode()


@pytest.fixture
def held_stream() -> Iterator[tuple[str, threading.Event]]:
    """An OpenAI-style upstream that streams one chunk, then waits to be released."""
    release = threading.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("from the old "))
        await asyncio.to_thread(release.wait, 10)
        await response.write(chunk("config"))
        await response.write(chunk("", "stop"))
        await response.write(b"data: [DONE]\n\n")
        return response

    def app() -> web.Application:
        held = web.Application()
        held.router.add_post("/v1/chat/completions", stream)
        return held

    with ThreadedServer(app) as server:
        yield server.url, release
        release.set()


def test_a_stream_in_flight_finishes_on_its_config_while_new_requests_see_the_new_one(
    live, ollama, held_stream
):
    url, release = held_stream
    old = declarative({"/old": ai_proxy(CHAT, "openai", url + "/v1/chat/completions")})
    assert live.post_config(json=old).status_code == 201
    first_chunk = threading.Event()

    def stream_old() -> tuple[int, str]:
        body = []
        request = {**SEED_CHAT, "stream": True}
        with live.http.stream("POST", live.proxy + "/old", json=request) as response:
            for text in response.iter_text():
                body.append(text)
                first_chunk.set()
            return response.status_code, "".join(body)

    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(stream_old)
        assert first_chunk.wait(10)  # the stream has started on the old config
        new = declarative({"/new": ollama_route(ollama.url, "/new")})
        assert live.post_config(json=new).status_code == 201
        assert live.http.post(live.proxy + "/old", json=SEED_CHAT).json() == NO_ROUTE
        assert live.http.post(live.proxy + "/new", json=SEED_CHAT).status_code == 200
        release.set()
        status, text = in_flight.result(timeout=10)

    assert status == 200
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    content = "".join(json.loads(event)["choices"][0]["delta"].get("content", "")
                      for event in events[:-1])  # fmt: skip
    assert content == "from the old config"
