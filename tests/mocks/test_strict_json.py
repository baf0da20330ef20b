"""NaN and Infinity are not JSON: every mock answers them on its own not-JSON path, as the real
servers' parsers (Go, serde, nlohmann, OpenAI's) reject them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from proxyproof.mocks import fault_spec, ollama_request, strict_json
from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.mocks.base import NOT_JSON

CONSTANTS = ["NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize(
    ("text", "constant"),
    [
        ('{"a": NaN}', "NaN"),
        ("Infinity", "Infinity"),
        ("[1, -Infinity]", "-Infinity"),
        ('{"note": "NaN and Infinity are words here", "t": NaN}', "NaN"),
        ('{"quote": "a \\" NaN", "t": Infinity}', "Infinity"),
    ],
)
def test_loads_rejects_the_constants_where_they_stand(text: str, constant: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        strict_json.loads(text)
    assert (raised.value.msg, raised.value.pos) == ("Expecting value", text.rindex(constant))


def test_parse_body_is_json_loads_without_the_constants() -> None:
    assert strict_json.parse_body(b'{"a": [1.5, "NaN"]}') == {"a": [1.5, "NaN"]}
    assert strict_json.parse_body('{"é": 1}'.encode("utf-16")) == {"é": 1}  # as json.loads
    for body in (b"", b"{", b"\xff", b"NaN", b'{"a": -Infinity}'):
        assert strict_json.parse_body(body) is NOT_JSON


def test_go_words_a_bad_sign_as_a_numeric_literal() -> None:
    assert ollama_request.syntax_error(b'{"t": -Infinity}') == (
        "invalid character 'I' in numeric literal"
    )
    assert ollama_request.syntax_error(b'{"t": NaN}') == (
        "invalid character 'N' looking for beginning of value"
    )
    assert ollama_request.syntax_error(b"[-") == "unexpected EOF"
    assert ollama_request.syntax_error(b"  ") == "EOF"


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, RunningMock]]:
    started = {name: run_mock(name) for name in ("ollama", "huggingface", "llamacpp", "openai")}
    try:
        yield started
    finally:
        for mock in started.values():
            mock.stop()


CHAT = '{"model": "llama2", "messages": [{"role": "user", "content": "hi"}], "temperature": %s}'
GENERATE = '{"inputs": "hi", "parameters": {"temperature": %s}}'
COMPLETION = '{"prompt": "hi", "temperature": %s}'


def _error_text(reply: httpx.Response) -> str:
    """The error message, wherever the server's dialect puts it."""
    if not reply.headers["content-type"].startswith("application/json"):
        return reply.text
    error: Any = reply.json()["error"]
    return error if isinstance(error, str) else error["message"]


@pytest.mark.parametrize("constant", CONSTANTS)
@pytest.mark.parametrize(
    ("name", "path", "template", "status", "message"),
    [
        pytest.param("ollama", "/api/chat", CHAT, 400, "invalid character '{char}' ", id="ollama"),
        pytest.param("ollama", "/v1/chat/completions", CHAT, 400, "invalid character '{char}' ",
                     id="ollama-v1"),
        pytest.param("huggingface", "/generate", GENERATE, 400,
                     "Failed to parse the request body as JSON: expected value at line 1 column "
                     "{column}", id="tgi"),
        pytest.param("huggingface", "/v1/chat/completions", CHAT, 400,
                     "Failed to parse the request body as JSON: expected value at line 1 column "
                     "{column}", id="tgi-v1"),
        pytest.param("llamacpp", "/completion", COMPLETION, 500,
                     "[json.exception.parse_error.101] parse error at line 1, column {column}: ",
                     id="llamacpp"),
        pytest.param("llamacpp", "/v1/chat/completions", CHAT, 500,
                     "[json.exception.parse_error.101] parse error at line 1, column {column}: ",
                     id="llamacpp-v1"),
        pytest.param("openai", "/v1/chat/completions", CHAT, 400,
                     "We could not parse the JSON body of your request.", id="openai"),
    ],
)
def test_a_constant_takes_each_servers_not_json_path(
    mocks: dict[str, RunningMock], constant: str, name: str, path: str, template: str,
    status: int, message: str,
) -> None:
    body = template % constant
    column = body.index(constant) + 1
    if name == "llamacpp" and constant.startswith("-"):
        column += 1  # nlohmann's lexer fails on the byte after the sign, once it has read it
    char = constant.lstrip("-")[0]
    reply = httpx.post(mocks[name].url + path, content=body,
                       headers={"Content-Type": "application/json"}, timeout=10)
    assert reply.status_code == status
    assert _error_text(reply).startswith(message.format(column=column, char=char))
    entry = mocks[name].control.journal(path=path)[-1]
    assert entry["body"] == body  # journaled as text: it is not JSON


@pytest.mark.parametrize("name", ["ollama", "openai"])
def test_the_word_nan_inside_a_string_is_just_text(
    mocks: dict[str, RunningMock], name: str
) -> None:
    body = {"model": "llama2", "messages": [{"role": "user", "content": "NaN Infinity"}]}
    path = "/api/chat" if name == "ollama" else "/v1/chat/completions"
    assert httpx.post(mocks[name].url + path, json=body, timeout=10).status_code == 200


def test_the_control_api_rejects_the_constants_too(mocks: dict[str, RunningMock]) -> None:
    reply = httpx.post(
        mocks["openai"].url + "/__mock__/scripts",
        content='{"fault": {"kind": "latency", "seconds": NaN}}', timeout=10,
    )
    assert (reply.status_code, reply.json()) == (
        400, {"error": "the control API takes a JSON body"}
    )
    with pytest.raises(ValueError, match="takes a JSON body"):  # MockControl sends NaN as is
        mocks["openai"].control.fault("latency", seconds=float("nan"))
    with pytest.raises(ValueError, match="non-negative number"):  # no parser in between
        fault_spec.parse_fault({"kind": "latency", "seconds": float("nan")})
