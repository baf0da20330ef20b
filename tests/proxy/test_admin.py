"""The admin listener, over HTTP: Kong's ``GET /``, ``GET /status`` and ``POST /config`` (JSON,
YAML, form and multipart), Kong's 400 for a config it refuses, and the swap: atomic, served right
after the 201, and a refused config changes nothing."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
import yaml
from aiohttp import web
from proxy_support import CHAT, SEED_CHAT, ai_proxy, declarative

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.proxy_impl.admin import EMPTY_HASH, proxy_and_admin_apps
from proxyproof.serving import ThreadedServer

SECRET = "sekrit-admin-123"
NO_ROUTE = {"message": "no Route matched with those values"}


@dataclass
class Live:
    proxy: str
    admin: str
    http: httpx.Client

    def post_config(self, query: str = "", **kwargs) -> httpx.Response:
        return self.http.post(f"{self.admin}/config{query}", **kwargs)

    def chat(self, path: str = "/chat", body: dict | None = None) -> httpx.Response:
        return self.http.post(self.proxy + path, json=body or SEED_CHAT)

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


def chat_config(upstream: str, path: str = "/chat", **options) -> dict:
    auth = {"header_name": "Authorization", "header_value": f"Bearer {SECRET}"}
    return declarative({path: ai_proxy(CHAT, "ollama", upstream + "/api/chat", auth=auth,
                                       **options)})  # fmt: skip


def bad_config(upstream: str) -> dict:
    config = chat_config(upstream)
    config["services"][0]["routes"][0]["plugins"][0]["config"]["model"]["options"][
        "llama2_format"
    ] = "vicuna"
    return config


# --- GET / and GET /status ----------------------------------------------------------------------


def test_node_info_is_kong_db_less(live, ollama):
    info = live.http.get(live.admin + "/").json()
    assert info["tagline"] == "Welcome to kong" and info["version"].startswith("3.")
    assert info["node_id"] and info["hostname"]
    assert info["configuration"]["database"] == "off"
    assert set(info["plugins"]["available_on_server"]) >= {"ai-proxy", "ai-proxy-advanced"}
    assert info["plugins"]["enabled_in_cluster"] == []

    assert live.post_config(json=chat_config(ollama.url)).status_code == 201
    after = live.http.get(live.admin + "/")
    assert after.json()["plugins"]["enabled_in_cluster"] == ["ai-proxy"]
    assert after.json()["node_id"] == info["node_id"]
    assert SECRET not in after.text


def test_status_hash_and_traffic(live, ollama):
    status = live.http.get(live.admin + "/status").json()
    assert status["database"] == {"reachable": True}
    assert status["configuration_hash"] == EMPTY_HASH
    assert status["server"]["total_requests"] == 0

    config = chat_config(ollama.url)
    text = yaml.safe_dump(config)
    assert live.post_config(json={"config": text}).status_code == 201
    assert live.status_hash() == hashlib.md5(text.encode()).hexdigest()  # Kong: md5 of the text
    live.chat()
    live.chat("/elsewhere")
    server = live.http.get(live.admin + "/status").json()["server"]
    assert server["total_requests"] == 2 and server["connections_active"] == 0


# --- POST /config: what it takes ----------------------------------------------------------------


def test_an_empty_proxy_answers_no_route_until_a_config_arrives(live, ollama):
    before = live.chat()
    assert (before.status_code, before.json()) == (404, NO_ROUTE)

    assert live.post_config(json=chat_config(ollama.url)).status_code == 201
    after = live.chat()
    assert after.status_code == 200, after.text
    assert after.json()["choices"][0]["message"]["role"] == "assistant"
    assert ollama.control.journal()[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"


def _as_text(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False)


@pytest.mark.parametrize("form", ["json-document", "json-config-field", "yaml-body",
                                  "multipart", "urlencoded", "json-text-in-yaml-body"])
def test_every_way_of_posting_a_config(live, ollama, form):
    config = chat_config(ollama.url)
    text = _as_text(config)
    send = {
        "json-document": {"json": config},
        "json-config-field": {"json": {"config": text}},
        "yaml-body": {"content": text, "headers": {"Content-Type": "application/x-yaml"}},
        "multipart": {"files": {"config": ("kong.yaml", text, "application/octet-stream")}},
        "urlencoded": {"data": {"config": text}},
        "json-text-in-yaml-body": {"content": json.dumps(config),
                                   "headers": {"Content-Type": "text/yaml"}},
    }[form]
    answer = live.post_config(**send)
    assert answer.status_code == 201, answer.text
    assert live.chat().status_code == 200


def test_the_201_lists_the_entities_with_secrets_masked(live, ollama):
    answer = live.post_config(json=chat_config(ollama.url))
    body = answer.json()
    assert answer.headers["Content-Type"].startswith("application/json")
    assert SECRET not in answer.text
    (service_id, service), = body["services"].items()
    (route_id, route), = body["routes"].items()
    (plugin_id, plugin), = body["plugins"].items()
    assert service["id"] == service_id and service["name"] == "llm" and "routes" not in service
    assert route["service"] == {"id": service_id} and route["paths"] == ["/chat"]
    assert plugin["route"] == {"id": route_id} and plugin["name"] == "ai-proxy"
    assert plugin["config"]["auth"]["header_value"] == "******"
    again = live.post_config(json=chat_config(ollama.url)).json()
    assert set(again["plugins"]) == {plugin_id}  # ids are stable across loads


def test_check_hash_answers_304_for_the_config_already_served(live, ollama):
    body = {"config": _as_text(chat_config(ollama.url))}
    assert live.post_config("?check_hash=1", json=body).status_code == 201
    loaded = live.status_hash()
    assert live.post_config("?check_hash=1", json=body).status_code == 304
    assert live.post_config(json=body).status_code == 201  # without it, Kong reloads anyway
    assert live.status_hash() == loaded


def test_a_config_without_routes_is_taken(live, ollama):
    assert live.post_config(json=chat_config(ollama.url)).status_code == 201
    assert live.post_config(json={"_format_version": "3.0"}).status_code == 201
    assert live.chat().json() == NO_ROUTE


# --- POST /config: what it refuses --------------------------------------------------------------


def test_an_invalid_config_gets_kongs_400_and_changes_nothing(live, ollama):
    assert live.post_config(json=chat_config(ollama.url)).status_code == 201
    loaded = live.status_hash()

    answer = live.post_config(json=bad_config(ollama.url))
    assert answer.status_code == 400
    body = answer.json()
    assert (body["code"], body["name"]) == (14, "invalid declarative configuration")
    assert body["message"].startswith("declarative config is invalid: {services=")
    options = body["fields"]["services"][0]["routes"][0]["plugins"][0]["config"]["model"][
        "options"
    ]
    assert options == {"llama2_format": "expected one of: raw, openai, ollama"}
    (entry,) = body["flattened_errors"]
    assert entry["entity_type"] == "plugin" and entry["entity_name"] == "ai-proxy"
    assert entry["errors"] == [{"type": "field", "field": "config.model.options.llama2_format",
                                "message": "expected one of: raw, openai, ollama"}]
    assert SECRET not in answer.text

    assert live.status_hash() == loaded
    assert live.chat().status_code == 200


def test_entity_and_document_level_problems(live):
    config = {
        "_format_version": "3.0",
        "surprise": True,
        "services": [{"name": "s", "url": "http://127.0.0.1:9",
                      "routes": [{"name": "r", "paths": ["no-slash"]}]}],
    }  # fmt: skip
    body = live.post_config(json=config).json()
    assert body["fields"]["surprise"] == "unknown field"
    route = body["fields"]["services"][0]["routes"][0]
    assert route["paths"] == ["should start with: / (fixed path) or ~/ (regex path)"]
    assert route["@entity"] == ["must set one of 'methods', 'hosts', 'headers', 'paths'"]
    (entry,) = body["flattened_errors"]  # the unknown top-level key is no entity's
    assert entry["entity_type"] == "route" and entry["entity_name"] == "r"
    assert entry["entity"] == {"name": "r", "paths": ["no-slash"]}
    assert {"type": "field", "field": "paths.1",
            "message": "should start with: / (fixed path) or ~/ (regex path)"} in entry["errors"]


@pytest.mark.parametrize(
    ("send", "message"),
    [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}},
         "Cannot parse JSON body"),
        ({"json": [1, 2]}, "expected a declarative configuration"),
        ({"json": {"config": 42}}, "expected a declarative configuration"),
        ({"json": {}}, "expected a declarative configuration"),
        ({"content": b"hello", "headers": {"Content-Type": "text/plain"}},
         "expected a declarative configuration"),
        ({"content": b"\x00\xff" * 50}, "expected a declarative configuration"),
        ({"content": b"--x\r\nnonsense", "headers": {"Content-Type": "multipart/form-data"}},
         None),
        ({"data": {"other": "field"}}, "expected a declarative configuration"),
    ],
)  # fmt: skip
def test_garbage_bodies_are_400s(live, send, message):
    answer = live.post_config(**send)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    if message is not None:
        assert answer.json()["message"] == message


@pytest.mark.parametrize(
    "text",
    ["key: [unclosed", "- a list\n- not a mapping\n", "just a string\n", "a: &x [*x]\n: :\n",
     "\ud800".encode("utf-8", "surrogatepass").decode("latin-1")],
)  # fmt: skip
def test_unparsable_config_text_is_kongs_parse_error(live, text):
    answer = live.post_config(json={"config": text})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 14
    assert body["fields"]["error"].startswith("failed parsing declarative configuration")


def test_undecodable_multipart_upload_is_a_parse_error(live):
    answer = live.post_config(files={"config": ("kong.yaml", b"\xff\xfe\x00garbage")})
    assert answer.status_code == 400
    assert answer.json()["fields"]["error"] == "failed parsing declarative configuration: " \
                                               "not UTF-8 text"


def test_unknown_paths_and_methods_are_kongs_json(live):
    missing = live.http.get(live.admin + "/services")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not found"})
    wrong = live.http.delete(live.admin + "/config")
    assert (wrong.status_code, wrong.json()) == (405, {"message": "Method not allowed"})


# --- the swap -----------------------------------------------------------------------------------


@pytest.fixture
def held_upstream() -> Iterator[tuple[str, threading.Event, threading.Event]]:
    """An OpenAI-style upstream that holds each request until released."""
    arrived, release = threading.Event(), threading.Event()

    async def reply(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.to_thread(release.wait, 10)
        return web.json_response({
            "id": "held", "object": "chat.completion", "created": 1, "model": "llama2",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "from the old config"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })  # fmt: skip

    def app() -> web.Application:
        held = web.Application()
        held.router.add_post("/v1/chat/completions", reply)
        return held

    with ThreadedServer(app) as server:
        yield server.url, arrived, release
        release.set()


def test_a_request_in_flight_finishes_with_the_config_it_started_with(live, ollama, held_upstream):
    url, arrived, release = held_upstream
    old = declarative({"/chat": ai_proxy(CHAT, "openai", url + "/v1/chat/completions")})
    assert live.post_config(json=old).status_code == 201
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(live.chat)
        assert arrived.wait(10)
        new = chat_config(ollama.url, path="/new")
        assert live.post_config(json=new).status_code == 201
        # Served from the 201 on: the old route is gone, the new one answers.
        assert live.chat().json() == NO_ROUTE
        assert live.chat("/new").status_code == 200
        release.set()
        finished = in_flight.result(timeout=10)
    assert finished.status_code == 200, finished.text
    assert finished.json()["choices"][0]["message"]["content"] == "from the old config"


def test_a_larger_body_limit_arriving_later_is_honoured(live, ollama):
    """The proxy started empty; the config posted later accepts bodies far above 8 KiB."""
    long_chat = copy.deepcopy(SEED_CHAT)
    long_chat["messages"][-1]["content"] = "x" * 50_000
    config = chat_config(ollama.url)
    config["services"][0]["routes"][0]["plugins"][0]["config"]["max_request_body_size"] = 0
    assert live.post_config(json=config).status_code == 201
    answer = live.chat(body=long_chat)
    assert answer.status_code == 200, answer.text


def test_a_config_given_at_start_is_served_and_hashed():
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", "http://127.0.0.1:9/api/chat")})
    proxy_factory, admin_factory = proxy_and_admin_apps(config)
    with ThreadedServer(proxy_factory) as proxy, ThreadedServer(admin_factory) as admin, \
            httpx.Client(trust_env=False, timeout=10) as http:
        status = http.get(admin.url + "/status").json()
        assert status["configuration_hash"] not in (EMPTY_HASH, "")
        assert http.get(admin.url + "/").json()["plugins"]["enabled_in_cluster"] == ["ai-proxy"]
        assert http.post(proxy.url + "/chat", json=SEED_CHAT).status_code == 502  # port 9: shut
