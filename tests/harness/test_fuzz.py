"""proxyproof fuzz: schemathesis from fixtures/oas.yaml through a gateway finds nothing in the
bundled proxy, catches a broken gateway with a curl command that reproduces the failure, never
shows a configured secret, and its command line says what is wrong in one line."""

from __future__ import annotations

import json
import shlex
import subprocess
from typing import Any

import pytest
import requests
from aiohttp import web

from proxyproof.cli import main
from proxyproof.gateways import bundled_gateway
from proxyproof.harness.fuzz import expected_rejection, loaded, run_fuzz, running_target
from proxyproof.harness.gateway import InProcessGateway

SECRET = "hf_example_token"  # the huggingface example's configured credential


def _fuzz(kong: bool, examples: int, seed: int) -> dict[str, Any]:
    with loaded(bundled_gateway(kong)) as target:
        report = run_fuzz(target, gateway="bundled", max_examples=examples, seed=seed, kong=kong)
    return report.as_dict()


@pytest.mark.parametrize("kong", [False, True], ids=["reference", "kong-compat"])
def test_the_bundled_proxy_answers_every_generated_request_as_documented(kong):
    report = _fuzz(kong, examples=6, seed=11)
    assert report["ok"], json.dumps(report["failures"], indent=1)[:4000]
    for operation in report["operations"]:
        assert operation["examples"] == {"positive": 6, "negative": 6}
    assert SECRET not in json.dumps(report)
    if not kong:
        assert not report["deviations"]  # Kong's departures are only allowed in Kong's mode


def _broken(config: dict[str, Any]) -> web.Application:
    """Answers chat with a 500 when a message has no string content, and completions with a
    reply that violates CompletionsResponse (no choices)."""
    async def handle(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": {"message": "bad JSON"}}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": {"message": "not an object"}}, status=400)
        if request.path.endswith("/completions"):
            if not isinstance(body.get("prompt"), str):
                return web.json_response({"error": {"message": "no prompt"}}, status=400)
            return web.json_response({"object": "text_completion"})
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return web.json_response({"error": {"message": "no messages"}}, status=400)
        if any(not isinstance(m, dict) or not isinstance(m.get("content"), str)
               for m in messages):
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response({"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}}]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def test_a_broken_gateway_is_caught_with_a_curl_command_that_reproduces_it():
    with InProcessGateway(_broken, "broken") as gateway:
        url = gateway.load({})
        target = running_target(url, ["llama2"])
        report = run_fuzz(target, gateway="broken", max_examples=15, seed=5,
                          modes=("positive",)).as_dict()
        assert not report["ok"]
        checks = {(f["operation"], f["check"]) for f in report["failures"]}
        assert ("POST /{provider}/chat", "not_a_server_error") in checks
        assert ("POST /{provider}/completions", "response_schema_conformance") in checks
        for failure in report["failures"]:
            command = shlex.split(failure["curl"].split("\n\n")[0])
            assert command[0] == "curl" and command[-1].startswith(url + "/llama2/")
            again = subprocess.run([*command, "-s", "-o", "/dev/null", "-w", "%{http_code}"],
                                   capture_output=True, text=True, timeout=10)
            assert again.stdout == str(failure["status"]), failure


def test_documented_gateway_rules():
    assert expected_rejection("llm/v1/chat", [], None) == (
        "request body doesn't contain valid prompts")
    assert expected_rejection("llm/v1/chat", {"messages": [{}]}, "llama2") is None
    assert "cannot use own model" in expected_rejection(
        "llm/v1/chat", {"messages": [{}], "model": "gpt"}, "llama2")
    assert "multiple" in expected_rejection("llm/v1/completions",
                                            {"messages": [{}], "prompt": "x"}, None)
    assert "not compatible" in expected_rejection("llm/v1/chat", {"prompt": "x"}, None)


def test_a_path_with_an_encoded_newline_gets_the_proxys_json_404():
    """Found by the fuzzer: '.' in the catch-all route left such paths to aiohttp's text 404."""
    with loaded(bundled_gateway(False), ["ollama"]) as target:
        answer = requests.post(target.url + "/a%0Ab/chat", json={"prompt": "x"}, timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"message": "no Route matched with those values"}


def test_fuzz_command_json_report_shape(capsys):
    with pytest.raises(SystemExit) as done:
        main(["fuzz", "--max-examples", "3", "--seed", "1", "--hosting", "huggingface,ollama",
              "--json", "-"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert done.value.code == 0, report["failures"]
    assert set(report) >= {"gateway", "url", "ok", "seed", "max_examples", "generation_modes",
                           "examples", "operations", "failures", "failure_count", "deviations",
                           "upstream_errors", "seconds"}
    assert report["seed"] == 1 and report["examples"] == 12
    assert [o["operation"] for o in report["operations"]] == [
        "POST /{provider}/chat", "POST /{provider}/completions"]
    assert "no failures" in captured.err and SECRET not in captured.out + captured.err


@pytest.mark.parametrize("argv, message", [
    (["fuzz", "--config", "kong.yaml"], "--config does not apply"),
    (["fuzz", "--gateway", "litellm"], "--gateway litellm does not serve"),
    (["fuzz", "--gateway-url", "http://127.0.0.1:9", "--kong-compat"], "drop --kong-compat"),
    (["fuzz", "--gateway-url", "localhost:8000"], "not an http(s) URL"),
    (["fuzz", "--provider", "llama2"], "use it with --gateway-url"),
    (["fuzz", "--hosting", "ollama,nope"], "--hosting: unknown nope"),
    (["fuzz", "--gateway", "kong"], "needs --admin-url and --proxy-url"),
])
def test_fuzz_usage_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("proxyproof fuzz: ")


@pytest.mark.parametrize("argv, message", [
    (["fuzz", "--max-examples", "0"], "must be 1 or more"),
    (["fuzz", "--max-examples", "many"], "not a whole number"),
    (["fuzz", "--mode", "sideways"], "invalid choice"),
])
def test_fuzz_bad_values_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_fuzz_help_explains_the_rules_and_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    out = capsys.readouterr().out
    for words in ("--gateway-url", "--max-examples", "--json", "curl", "Exit status",
                  "docs/fuzz.md"):
        assert words in out


def _leaky(config: dict[str, Any]) -> web.Application:
    """Answers everything with a 500 that shows the config it was loaded with, secrets and all."""
    async def handle(request: web.Request) -> web.Response:
        shown = json.dumps(config)
        return web.Response(status=500, text=shown[shown.index('"auth"'):][:200])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def test_configured_secrets_are_masked_in_the_report():
    with loaded(InProcessGateway(_leaky, "leaky"), ["huggingface"]) as target:
        report = run_fuzz(target, gateway="leaky", max_examples=2, seed=1,
                          modes=("positive",)).as_dict()
    assert not report["ok"]
    shown = json.dumps(report)
    assert SECRET not in shown and 'header_value\\": \\"***' in shown
