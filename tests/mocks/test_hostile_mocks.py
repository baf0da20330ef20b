"""Hostile request bodies against every mock over HTTP: each gets the status and error shape its
real server gives (``strict_json``, ``docs/security.md`` "Mocks"), never aiohttp's text 500 or a
"mock internal error", and each is journaled."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxyproof.mocks import KIND_NAMES, kind
from proxyproof.mocks.app import RunningMock, run_mock

GOOD = b'{"model":"llama2","prompt":"hi","inputs":"hi","messages":[{"role":"user","content":"hi"}]'
CORPUS: dict[str, tuple[bytes, dict[str, str]]] = {
    "empty": (b"", {}),
    "not_json": (b"hello", {}),
    "invalid_utf8": (GOOD.replace(b'"hi"', b'"\xff\xfe"') + b"}", {}),
    "lone_surrogate": (GOOD.replace(b'"hi"', b'"\\ud800"') + b"}", {}),
    "deep_array": (b"[" * 10_000 + b"]" * 10_000, {}),
    "deep_object": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {}),
    "long_integer": (GOOD + b',"max_tokens":' + b"9" * 5000 + b"}", {}),
    "long_option": (GOOD + b',"options":{"num_predict":' + b"9" * 5000 + b"}}", {}),
    "nan": (GOOD + b',"temperature":NaN}', {}),
    "wrong_types": (b'{"model":123,"messages":"x","prompt":[1],"inputs":{"a":1}}', {}),
    "array_body": (b"[1,2]", {}),
    "gzip": (gzip.compress(GOOD + b"}"), {"Content-Encoding": "gzip"}),
    "broken_gzip": (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}),
    "unknown_encoding": (GOOD + b"}", {"Content-Encoding": "x-squash"}),
}
# kind -> (endpoint, default status, {corpus item: status}). No server inflates a request body:
# a gzip body is not JSON to gin and axum, and refused by cpp-httplib built without zlib; an
# encoding none of them knows is ignored, the body read as sent (here: valid).
EXPECTED: dict[str, tuple[str, int, dict[str, int]]] = {
    # Go decodes bad Unicode as U+FFFD: those bodies generate
    "ollama": ("/api/generate", 400, {
        "invalid_utf8": 200, "lone_surrogate": 200, "unknown_encoding": 200,
    }),
    # axum: syntax 400 (plain text), shape 422 (plain text)
    "huggingface": ("/generate", 400, {
        "wrong_types": 422, "array_body": 422, "unknown_encoding": 200,
    }),
    # nlohmann throws, ex_wrapper answers 500 JSON; type errors 400; json_value lenient
    "llamacpp": ("/completion", 500, {
        "wrong_types": 200, "array_body": 400, "gzip": 415, "broken_gzip": 415,
        "unknown_encoding": 200,
    }),
    "openai": ("/v1/chat/completions", 400, {"unknown_encoding": 200}),
}
TEXT_ERRORS = {"huggingface"}  # axum's rejections are plain text; every other error is JSON


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, RunningMock]]:
    started = {name: run_mock(name) for name in KIND_NAMES}
    yield started
    for mock in started.values():
        mock.stop()


def _assert_deliberate(name: str, response: httpx.Response) -> None:
    assert "mock internal error" not in response.text
    assert "Internal Server Error" not in response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400 and name not in TEXT_ERRORS:
        assert response.headers["content-type"].startswith("application/json")
        assert "error" in response.json()
    if response.status_code >= 500:
        assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("item", list(CORPUS))
@pytest.mark.parametrize("name", KIND_NAMES)
def test_hostile_corpus(
    mocks: dict[str, RunningMock], name: str, item: str, caplog: pytest.LogCaptureFixture
) -> None:
    mock = mocks[name]
    path, default, overrides = EXPECTED[name]
    body, headers = CORPUS[item]
    before = len(mock.control.journal())
    with caplog.at_level(logging.WARNING):
        response = httpx.post(mock.url + path, content=body, timeout=30,
                              headers={"Content-Type": "application/json", **headers})
    assert response.status_code == overrides.get(item, default), response.text[:300]
    _assert_deliberate(name, response)
    journal = mock.control.journal()
    assert len(journal) == before + 1 and journal[-1]["path"] == path
    assert journal[-1]["status"] == response.status_code
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_endpoint_answers_a_deep_body_deliberately(
    mocks: dict[str, RunningMock], name: str
) -> None:
    """Every route of every kind, not only the main one, and the control API."""
    mock = mocks[name]
    deep, _ = CORPUS["deep_object"]
    long_number, _ = CORPUS["long_integer"]
    for endpoint in kind(name).endpoints:
        path = endpoint.path.replace("{model_id:.+}", "llama2").replace("{model:.+}", "llama2")
        for body in (deep, long_number):
            response = httpx.request(endpoint.method, mock.url + path, content=body, timeout=30)
            assert response.status_code != 500 or name == "llamacpp", (path, response.text)
            _assert_deliberate(name, response)
    for method, path in (("POST", "/__mock__/scripts"), ("GET", "/__mock__/journal")):
        response = httpx.request(method, mock.url + path, content=deep, timeout=30)
        assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_body_over_the_limit_is_refused_and_journaled(
    mocks: dict[str, RunningMock], name: str
) -> None:
    mock = mocks[name]
    path = EXPECTED[name][0]
    response = httpx.post(mock.url + path, content=b"x" * (64 * 1024 * 1024 + 1), timeout=60)
    assert response.status_code == 413
    _assert_deliberate(name, response)
    assert mock.control.journal()[-1]["status"] == 413


def _malformed() -> st.SearchStrategy[bytes]:
    """Bytes near JSON: random bytes, truncations and splices of a valid body, deep nesting."""
    valid = GOOD + b"}"
    return st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(valid)).map(lambda n: valid[:n]),
        st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=8)).map(
            lambda cut: valid[: cut[0]] + cut[1] + valid[cut[0] :]
        ),
        st.integers(500, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(4000, 6000).map(lambda digits: b'{"max_tokens":' + b"7" * digits + b"}"),
        st.text(max_size=50).map(lambda text: json.dumps({"prompt": text}).encode()),
    )


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_malformed(), name=st.sampled_from(KIND_NAMES))
def test_malformed_bodies_get_deliberate_answers(
    mocks: dict[str, RunningMock], caplog: pytest.LogCaptureFixture, body: bytes, name: str
) -> None:
    mock = mocks[name]
    path = EXPECTED[name][0]
    caplog.clear()
    response = httpx.post(mock.url + path, content=body, timeout=30,
                          headers={"Content-Type": "application/json"})
    assert not (response.status_code == 500
                and not response.headers["content-type"].startswith("application/json"))
    _assert_deliberate(name, response)
    last = mock.control.journal(path=path)[-1]
    assert last["body_length"] == len(body) and last["status"] == response.status_code
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_bug_becomes_the_kinds_json_error_and_one_log_line(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The catch-all middleware (``mocks/guard.py``): an exception nothing else caught."""
    from proxyproof.mocks import pipeline

    async def broken(self: object, *args: object) -> None:
        raise RuntimeError("a bug, with details the client must not see")

    monkeypatch.setattr(pipeline.Pipeline, "_respond", broken)
    with caplog.at_level(logging.DEBUG, logger="mocks"), run_mock(name) as mock:
        response = httpx.post(mock.url + EXPECTED[name][0], content=GOOD + b"}")
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/json")
        assert "details" not in response.text and "Traceback" not in response.text
        assert name in response.text
        entry = mock.control.journal()[-1]
        assert entry["outcome"] == "completed"  # journaled, and ended
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "RuntimeError" in errors[0].getMessage()


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_newline_in_the_path_reaches_the_mock_not_aiohttps_text_404(mocks, name):
    mock = mocks[name]
    plain = httpx.get(mock.url + "/nowhere", timeout=10)
    newline = httpx.get(mock.url + "/no%0Awhere", timeout=10)
    assert "404: Not Found" not in newline.text
    assert (newline.status_code, newline.headers.get("content-type")) == (
        plain.status_code, plain.headers.get("content-type"))
    assert mock.control.journal()[-1]["path"] == "/no\nwhere"
