"""Hostile client input through the proxy, in both modes: every one is a deliberate 4xx JSON
answer (or a 200 where the input is fine), never a 500, and never a traceback in the log
(docs/security.md#request-bodies)."""

from __future__ import annotations

import gzip
import json
import logging
import resource
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxy_support import CHAT, SEED_CHAT, ai_proxy, declarative, running_proxy
from test_request_body import gzip_bomb

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.proxy_impl.request_body import CEILING
from proxyproof.serving import ThreadedServer

SEED = json.dumps(SEED_CHAT).encode()
NO_PROMPTS = "request body doesn't contain valid prompts"


def chat(extra: bytes) -> bytes:
    """The seed chat body with ``extra`` (``"key": value``) spliced in as raw text."""
    return b'{"messages": [{"role": "user", "content": "hi"}], ' + extra + b"}"


@dataclass(frozen=True)
class Hostile:
    name: str
    body: bytes
    status: int  # the reference proxy's
    kong_status: int | None = None  # Kong mode's, when it differs
    headers: dict[str, str | bytes] = field(default_factory=dict)
    path: str = "/chat"
    says: str = ""  # in the error message


def coded(name: str, body: bytes, coding: str, status: int, says: str = "") -> Hostile:
    """A body with a Content-Encoding, which the proxy decodes itself."""
    return Hostile(name, body, status, headers={"Content-Encoding": coding}, says=says)


CORPUS = [
    coded("gzip said, plain sent", SEED, "gzip", 400, says="not valid gzip data"),
    coded("gzip", gzip.compress(SEED), "gzip", 200),
    coded("x-gzip", gzip.compress(SEED), "x-gzip", 200),
    coded("deflate", zlib.compress(SEED), "deflate", 200),
    coded("truncated gzip", gzip.compress(SEED)[:20], "gzip", 400, says="not valid gzip data"),
    coded("br", SEED, "br", 415, says="'br' is not supported"),
    coded("zstd", SEED, "zstd", 415),
    coded("x-foo", SEED, "x-foo", 415),
    Hostile("lone surrogate", chat(b'"user": "\\ud800"'), 400, says="lone surrogate"),
    Hostile("invalid UTF-8", chat(b'"user": "\xff\xfe"'), 400, says="not valid UTF-8"),
    Hostile("10k-deep nesting", chat(b'"x": ' + b"[" * 10_000 + b"]" * 10_000), 400,
            path="/roomy", says="deeper than 128 levels"),
    Hostile("5000-digit max_tokens", chat(b'"max_tokens": ' + b"9" * 5000), 400,
            says="longer than 100 digits"),
    Hostile("NaN", chat(b'"max_tokens": NaN'), 400, says="NaN"),
    Hostile("1e999", chat(b'"temperature": 1e999'), 400, says="too large for a double"),
    Hostile("repeated key", chat(b'"messages": [{"role": "user", "content": "again"}]'), 400,
            kong_status=200, says='repeats the key "messages"'),
    Hostile("empty body", b"", 400, says=NO_PROMPTS),
    Hostile("wrong content type", SEED, 400, headers={"Content-Type": "text/plain"},
            says=NO_PROMPTS),
    Hostile("over the route's limit", chat(b'"user": "' + b"x" * 9000 + b'"'), 400,
            says=NO_PROMPTS),
    Hostile("header bytes", SEED, 200, headers={"X-Weird": b"caf\xc3\xa9 \xff\xfe"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def ollama() -> Iterator[RunningMock]:
    with run_mock("ollama", models=("llama2",)) as mock:
        yield mock


def config(mock: RunningMock) -> dict:
    upstream = mock.url + "/api/chat"
    roomy = {**ai_proxy(CHAT, "ollama", upstream), "max_request_body_size": 2 << 20}
    beyond = {**ai_proxy(CHAT, "ollama", upstream), "max_request_body_size": 2 * CEILING}
    return declarative({
        "/chat": ai_proxy(CHAT, "ollama", upstream),
        "/roomy": {"config": roomy},
        "/beyond": {"config": beyond},
    })  # fmt: skip


@pytest.fixture(scope="module", params=[False, True], ids=["reference", "kong"])
def proxy(request, ollama) -> Iterator[tuple[ThreadedServer, bool]]:
    with running_proxy(config(ollama), kong_compat=request.param) as server:
        yield server, request.param


def send(url: str, body: bytes, headers: dict[str, str | bytes] | None = None) -> httpx.Response:
    sent = {"Content-Type": "application/json", "Accept-Encoding": "identity", **(headers or {})}
    return httpx.post(url, content=body, headers=sent, timeout=30)


def assert_json_error(response: httpx.Response) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.json()
    message = body["error"]["message"] if "error" in body else body["message"]
    assert isinstance(message, str) and message
    return message


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("hostile", CORPUS, ids=[hostile.name for hostile in CORPUS])
def test_hostile_request(proxy, ollama, hostile, caplog):
    server, kong = proxy
    caplog.set_level(logging.INFO)
    ollama.control.clear_journal()
    response = send(server.url + hostile.path, hostile.body, hostile.headers)
    expected = hostile.kong_status if kong and hostile.kong_status else hostile.status
    assert response.status_code == expected, response.text
    if expected != 200:
        assert hostile.says in assert_json_error(response)
        assert ollama.control.journal() == []  # refused before anything went upstream
    else:
        (received,) = ollama.control.journal()
        assert received["body"]["messages"][-1]["content"] in ("What is 1+1?", "again")
        assert "Content-Encoding" not in received["headers"]
    assert_no_traceback(caplog)


def test_a_gzip_bomb_is_413_at_once_without_inflating(proxy, caplog):
    server, _ = proxy
    bomb = gzip_bomb()  # 1 GiB of zeros in about 1 MiB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    response = send(server.url + "/roomy", bomb, {"Content-Encoding": "gzip"})
    assert time.monotonic() - started < 5
    assert response.status_code == 413
    assert "inflates to more than 2097152 bytes" in assert_json_error(response)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown_kib < 128 * 1024  # far from the gigabyte it would inflate to
    assert_no_traceback(caplog)


def test_a_limit_above_the_ceiling_is_the_ceiling(proxy, caplog):
    server, _ = proxy
    over = b"x" * (CEILING + 1)
    said = send(server.url + "/beyond", over)  # Content-Length says it: answered unread

    def dribble() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        for start in range(0, len(over), 1 << 20):
            yield over[start : start + (1 << 20)]

    try:
        streamed = send(server.url + "/beyond", dribble())  # type: ignore[arg-type]
    except httpx.TransportError:  # the proxy may hang up before the rest is sent: also fine
        streamed = None
    for response in (said, streamed):
        if response is not None:
            assert response.status_code == 413
            assert f"larger than {CEILING} bytes" in assert_json_error(response)
    assert_no_traceback(caplog)


# --- malformed bodies, generated ---------------------------------------------------------------

mutated = st.builds(
    lambda data, at, byte: data[:at] + bytes([byte]) + data[at + 1 :],
    st.just(SEED),
    st.integers(0, len(SEED) - 1),
    st.integers(0, 255),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.integers(0, len(SEED)).map(lambda n: SEED[:n]),  # truncated JSON
    mutated,
    st.text(max_size=50).map(lambda text: chat(b'"user": ' + json.dumps(text).encode())),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                 max_leaves=8).map(lambda value: json.dumps(value).encode()),
)  # fmt: skip
codings = st.sampled_from(["", "gzip", "deflate", "gzip-said", "br"])


def encoded(body: bytes, coding: str) -> tuple[bytes, dict[str, str]]:
    if coding == "gzip":
        return gzip.compress(body), {"Content-Encoding": "gzip"}
    if coding == "deflate":
        return zlib.compress(body), {"Content-Encoding": "deflate"}
    if coding == "gzip-said":
        return body, {"Content-Encoding": "gzip"}
    return body, {"Content-Encoding": coding} if coding else {}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, coding=codings)
def test_malformed_bodies_are_never_a_5xx(proxy, caplog, body, coding):
    server, _ = proxy
    sent, headers = encoded(body, coding)
    response = send(server.url + "/chat", sent, headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_json_error(response)
    assert_no_traceback(caplog)
