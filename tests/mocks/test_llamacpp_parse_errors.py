"""The llama.cpp mock answers a body that nlohmann::json rejects exactly as llama.cpp b4748 does.

``nlohmann_parse_errors.yaml`` holds nlohmann/json 3.11.3's own answers (measured with
``nlohmann_errors.cpp``; ``nlohmann_corpus.py`` lists the inputs and regenerates the file): for
each rejected body, ``e.what()`` and the exact 500 body that llama.cpp's exception handler writes;
for each accepted one, the value it read. The port (``mocks/nlohmann_errors.py``) must give the
same text byte for byte, and the mock the same HTTP body.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from proxyproof.mocks import llamacpp_request, nlohmann_errors, strict_json
from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.mocks.base import NOT_JSON

FIXTURE = Path(__file__).with_name("nlohmann_parse_errors.yaml")
CASES: list[dict[str, Any]] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))["cases"]
REJECTED = [case for case in CASES if "reply" in case]
ACCEPTED = [case for case in CASES if "accepted" in case]
# nlohmann has no depth limit; the mock's parser stops at 512 levels (strict_json.MAX_DEPTH), so
# this body gets the mock's own 500 where llama.cpp goes on to "cannot use at() with array".
BEYOND_THE_MOCK = {"600 nested arrays"}


def _input(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["input"])


def _what(case: dict[str, Any]) -> bytes:
    if "what" in case:
        return case["what"].encode("utf-8")
    return base64.b64decode(case["what_b64"])


@pytest.fixture(scope="module")
def llamacpp() -> Iterator[httpx.Client]:
    mock: RunningMock = run_mock("llamacpp")
    try:
        with httpx.Client(base_url=mock.url, timeout=10) as client:
            yield client
    finally:
        mock.stop()


def test_the_fixture_covers_the_brief() -> None:
    assert len(REJECTED) >= 40
    reasons = {what.split(b" - ", 1)[-1].split(b";")[0] for what in map(_what, REJECTED)}
    assert {b"invalid literal", b"unexpected end of input", b"invalid BOM",
            b"invalid string: missing closing quote",
            b"invalid string: ill-formed UTF-8 byte"} <= reasons
    assert any(b"out_of_range.406" in _what(case) for case in REJECTED)
    assert any(b"empty input" in _what(case) for case in REJECTED)


@pytest.mark.parametrize("case", REJECTED, ids=[case["name"] for case in REJECTED])
def test_the_port_words_each_error_as_nlohmann(case: dict[str, Any]) -> None:
    assert nlohmann_errors.check(_input(case)).error == _what(case)


@pytest.mark.parametrize("case", ACCEPTED, ids=[case["name"] for case in ACCEPTED])
def test_the_port_accepts_what_nlohmann_accepts(case: dict[str, Any]) -> None:
    verdict = nlohmann_errors.check(_input(case))
    assert verdict.error is None
    read = _input(case)[: verdict.end].decode("utf-8-sig")
    # nlohmann keeps an integer beyond 64 bits as a double: compare numbers as doubles
    assert json.loads(read, parse_int=float) == json.loads(case["accepted"], parse_int=float)


def test_every_rejected_body_gets_llamacpps_exact_reply(llamacpp: httpx.Client) -> None:
    wrong = {}
    for case in REJECTED:
        reply = llamacpp.post("/completion", content=_input(case))
        assert reply.headers["content-type"] == "application/json; charset=utf-8"
        assert reply.headers["server"] == "llama.cpp"
        if (reply.status_code, reply.content) != (500, case["reply"].encode("utf-8")):
            wrong[case["name"]] = (reply.status_code, reply.text)
    assert wrong == {}


def _expected_for_accepted(value: Any) -> tuple[int, str | None]:
    """What /completion answers for a body nlohmann reads as ``value``."""
    if isinstance(value, dict):
        return (200, None) if "prompt" in value else (400, "[json.exception.out_of_range.403] "
                                                           "key 'prompt' not found")
    kind = llamacpp_request.json_type(value)
    return 400, f"[json.exception.type_error.304] cannot use at() with {kind}"


@pytest.mark.parametrize("case", ACCEPTED, ids=[case["name"] for case in ACCEPTED])
def test_an_accepted_body_reaches_the_handler(llamacpp: httpx.Client,
                                              case: dict[str, Any]) -> None:
    reply = llamacpp.post("/completion", content=_input(case))
    if case["name"] in BEYOND_THE_MOCK:
        assert reply.status_code == 500
        assert reply.json()["error"]["message"].startswith("proxyproof mock: JSON nested deeper")
        return
    status, message = _expected_for_accepted(json.loads(case["accepted"]))
    assert reply.status_code == status, reply.text
    if message is not None:
        assert reply.json()["error"]["message"] == message


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/tokenize",
                                  "/detokenize", "/completions"])
@pytest.mark.parametrize("name", ["an unquoted key", "1e400 as a value", "empty",
                                  "valid non-ASCII then an invalid byte"])
def test_every_route_that_parses_a_body_answers_alike(llamacpp: httpx.Client, path: str,
                                                      name: str) -> None:
    case = next(case for case in CASES if case["name"] == name)
    reply = llamacpp.post(path, content=_input(case))
    assert (reply.status_code, reply.content) == (500, case["reply"].encode("utf-8"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"prompt":"x","temperature":1e400}', NOT_JSON),
        (b'{"prompt":"x","n_predict":' + b"9" * 400 + b"}", NOT_JSON),
        (b'{"prompt":"x","n_predict":' + b"9" * 30 + b"}",
         {"prompt": "x", "n_predict": 10**30 - 1}),
        ('{"prompt":"x"}'.encode("utf-16"), NOT_JSON),
        ('{"prompt":"x"}'.encode("utf-32-le"), NOT_JSON),
        (b'\xef\xbb\xbf{"prompt":"x"}', {"prompt": "x"}),
        (b'{"prompt":"x"}\x00 anything \xff', {"prompt": "x"}),
        (b'{"prompt":"x"} \x00', {"prompt": "x"}),
        (b'{"prompt":"x\x00"}', NOT_JSON),
        (b"\x00{}", NOT_JSON),
    ],
)
def test_body_json_reads_as_nlohmann_does(body: bytes, expected: Any) -> None:
    assert llamacpp_request.body_json(body, strict_json.parse_body(body)) == expected


def test_a_number_no_double_holds_is_llamacpps_500_not_a_default(llamacpp: httpx.Client) -> None:
    reply = llamacpp.post("/v1/chat/completions",
                          content=b'{"messages":[{"role":"user","content":"hi"}],"top_p":-1e999}')
    assert (reply.status_code, reply.json()) == (500, {"error": {
        "code": 500, "type": "server_error",
        "message": "[json.exception.out_of_range.406] number overflow parsing '-1e999'"}})
