"""The command line, run as a user runs it: a real process, real ports, Ctrl-C to stop."""

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from junitparser import JUnitXml

ROOT = Path(__file__).resolve().parents[2]
SEED_CHAT = {"messages": [{"role": "system", "content": "You are a mathematician"},
                          {"role": "user", "content": "What is 1+1?"}]}


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "proxyproof", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _read_url(process: subprocess.Popen, announcement: str) -> str:
    """The URL on the first stdout line that starts with ``announcement``."""
    for line in process.stdout:
        found = re.match(announcement + r".*?(http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"no URL printed; stderr: {process.stderr.read()}")


def _interrupt(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=10)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proxyproof", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


def test_help_explains_every_command():
    out = subprocess.run([sys.executable, "-m", "proxyproof", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    for command in ("check", "proxy", "mock"):
        assert command in out


def test_check_writes_every_report(tmp_path):
    files = {kind: tmp_path / f"report.{kind}" for kind in ("json", "junit", "markdown")}
    run = subprocess.run(
        [sys.executable, "-m", "proxyproof", "check", "--profile", "seed",
         *(arg for kind, path in files.items() for arg in (f"--{kind}", str(path)))],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(files["json"].read_text())
    assert report["summary"] == {"pass": 8, "fail": 0, "deviation": 0, "n/a": 0}
    assert {case["hosting"] for case in report["cases"]} == {
        "HuggingFace", "Ollama", "llama.cpp", "self-hosted GGUF"}
    assert {"id", "features", "outcome", "details"} <= set(report["cases"][0])
    suites = JUnitXml.fromfile(str(files["junit"]))
    assert sum(suite.tests for suite in suites) == 8
    assert sum(suite.failures for suite in suites) == 0
    assert "| seed | 2 ✅ | 2 ✅ | 2 ✅ | 2 ✅ |" in files["markdown"].read_text()
    assert "8 pass" in run.stdout


def test_check_json_to_stdout_keeps_stdout_clean():
    run = _run("check", "--case", "seed.ollama.chat", "--json", "-")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["summary"]["pass"] == 1


def test_check_lists_the_catalogue():
    listing = json.loads(_run("check", "--list", "--json", "-").stdout)["cases"]
    assert len(listing) >= 120 and set(listing[0]) == {"id", "title", "features"}
    assert _run("check", "--list", "-k", "seed and ollama").stdout.count("seed.ollama") == 2


def test_check_usage_errors_exit_2():
    for args in (["--profile", "nope"], ["--case", "no.such"], ["--gateway", "kong"],
                 ["--gateway", "manual"], ["-k", "("]):
        run = _run("check", *args)
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr.startswith("proxyproof check: ") and "Traceback" not in run.stderr


def test_check_on_a_users_own_config(tmp_path):
    config = tmp_path / "kong.yaml"
    config.write_text(_run("examples", "ollama").stdout)
    run = _run("check", "--config", str(config), "--json", "-")
    assert run.returncode == 0, run.stderr
    cases = json.loads(run.stdout)["cases"]
    assert {case["route"] for case in cases} == {"/llama2-chat", "/llama2-completions"}


def test_lint_reports_and_exits_1_on_an_error(tmp_path):
    assert _run("lint", "/nonexistent.yaml").returncode == 1
    config = tmp_path / "kong.yaml"
    config.write_text(_run("examples", "ollama").stdout.replace("127.0.0.1:11434", "ollama"))
    run = _run("lint", str(config))
    assert run.returncode == 1 and "fix:" in run.stdout


def test_mock_and_proxy_by_hand_then_ctrl_c(tmp_path):
    mock = _start("mock", "ollama", "--port", "0")
    try:
        mock_url = _read_url(mock, "ollama:")
        example = _run("examples", "ollama").stdout
        proxy_config = tmp_path / "ollama.yaml"
        proxy_config.write_text(example.replace("http://127.0.0.1:11434", mock_url))
        proxy = _start("proxy", "--config", str(proxy_config), "--port", "0")
        try:
            proxy_url = _read_url(proxy, "listening on")
            reply = httpx.post(proxy_url + "/llama2-chat", json=SEED_CHAT, timeout=10)
            assert reply.status_code == 200
            assert reply.json()["choices"][0]["message"]["role"] == "assistant"
        finally:
            assert _interrupt(proxy) == 0
        assert _interrupt(mock) == 0
        assert "POST /api/chat 200" in mock.stdout.read()
    finally:
        if mock.poll() is None:
            mock.kill()


def test_raw_url_templates_are_an_explicit_opt_in(tmp_path):
    """Kong lets a header be the whole upstream_url; the proxy does so only when told, loudly."""
    mock = _start("mock", "ollama", "--port", "0")
    try:
        mock_url = _read_url(mock, "ollama:")
        example = _run("examples", "ollama").stdout
        config = tmp_path / "templated.yaml"
        config.write_text(example.replace("http://127.0.0.1:11434/api/chat",
                                          "http://127.0.0.1:9/$(headers.x-upstream)"))
        aimed = {"X-Upstream": mock_url + "/api/chat"}
        statuses = {}
        for flags in ((), ("--kong-compat",), ("--kong-compat", "--raw-url-templates")):
            proxy = _start("proxy", "--config", str(config), "--port", "0", *flags)
            try:
                url = _read_url(proxy, "listening on")
                reply = httpx.post(url + "/llama2-chat", json=SEED_CHAT, headers=aimed, timeout=10)
                statuses[flags] = reply.status_code
            finally:
                assert _interrupt(proxy) == 0
            warned = "clients can choose the upstream" in proxy.stderr.read()
            assert warned == ("--raw-url-templates" in flags)
        # Encoded, the value stays in the path to the configured (closed) port: 502.
        assert statuses == {(): 502, ("--kong-compat",): 502,
                            ("--kong-compat", "--raw-url-templates"): 200}
    finally:
        _interrupt(mock)


def test_proxy_refuses_an_invalid_config_with_the_field_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        '_format_version: "3.0"\n'
        "routes:\n"
        "  - name: r\n"
        "    paths: [/chat]\n"
        "    plugins:\n"
        "      - name: ai-proxy\n"
        "        config:\n"
        "          route_type: llm/v1/chat\n"
        "          model: {provider: llama2, name: llama2, options: {llama2_format: raw}}\n"
    )
    run = subprocess.run([sys.executable, "-m", "proxyproof", "proxy", "--config", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "model.options.upstream_url" in run.stderr
    assert "must set 'model.options.upstream_url' for self-hosted providers/models" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("args", [["mock", "nothing"], ["proxy"], ["frobnicate"]])
def test_usage_errors_exit_2_without_traceback(args):
    run = subprocess.run([sys.executable, "-m", "proxyproof", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "usage:" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("args", [["mock", "ollama", "--port", "70000"],
                                  ["proxy", "--example", "ollama", "--port", "-1"],
                                  ["mock", "ollama", "--latency", "-0.5"],
                                  ["mock", "ollama", "--latency", "soon"],
                                  ["proxy", "--example", "nope"],
                                  ["proxy", "--example", "ollama", "--config", "kong.yaml"]])
def test_bad_values_are_usage_errors(args):
    run = _run(*args)
    assert run.returncode == 2 and "error: argument" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("command", [["mock", "ollama"], ["proxy", "--example", "ollama"]])
def test_a_busy_port_is_one_clear_line(command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = _run(*command, "--port", str(port))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == (
        f"proxyproof {command[0]}: cannot listen on 127.0.0.1:{port}: the port is already in use "
        "(pick another with --port, or --port 0 for any free port)")
    assert "Traceback" not in run.stderr and "Unclosed" not in run.stderr


def test_an_address_that_cannot_be_bound_is_one_clear_line():
    run = _run("mock", "ollama", "--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: not ours
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "proxyproof mock: cannot listen on 192.0.2.1:0: this machine has no such address")


def test_examples_are_listed_and_printed():
    listing = _run("examples").stdout.split()
    assert {"ollama", "huggingface-raw", "llamacpp-raw", "gguf-openai"} <= set(listing)
    assert _run("examples", "ollama").stdout.count("_format_version") == 1


def test_check_a_kong_admin_api_served_by_the_proxy():
    proxy = _start("proxy", "--port", "0", "--admin-port", "0")
    try:
        proxy_url = _read_url(proxy, "proxy listening on")
        admin_url = _read_url(proxy, "admin listening on")
        run = _run("check", "--gateway", "kong", "--admin-url", admin_url, "--proxy-url",
                   proxy_url, "--profile", "seed", "--json", "-")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["summary"]["pass"] == 8
    finally:
        assert _interrupt(proxy) == 0
