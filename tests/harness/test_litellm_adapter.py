"""The LiteLLM adapter: how a Kong config becomes LiteLLM's model_list, and a real LiteLLM proxy
(one process for the module) driven through the runner, judged by the mocks' journals.

LiteLLM is a test dependency (``litellm[proxy]`` in the ``test`` extras): when it is missing, the
tests that start it error out saying so instead of skipping."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from proxyproof.harness.adapters.litellm import LiteLLMError, LiteLLMGateway, litellm_config
from proxyproof.harness.catalogue import gateway_config, load_catalogue, select
from proxyproof.harness.results import Report
from proxyproof.harness.runner import run_catalogue

# LiteLLM takes ~10 s to start here (more on a busy CI machine): above the suite's 60 s default.
pytestmark = pytest.mark.timeout(240)

RUN = [  # expressible: run and judged
    "core.ollama.chat.json", "core.ollama.completions.json", "core.ollama.chat.stream",
    "core.gguf.chat.json", "core.gguf.completions.json", "errors.timeout.ollama",
]
NOT_EXPRESSIBLE = {  # case → a word its n/a reason must contain
    "seed.huggingface.chat": "raw", "seed.llamacpp.completions": "raw",
    "auth.header.ollama.override-true.client-true": "auth", "kong.openai.own-model": "kong",
    "errors.bad-json.chat": "JSON object", "model.own-model-refused.ollama": "model",
    "options.streaming-denied": "response_streaming", "errors.dns-failure.gguf": "loopback",
    "model.missing.ollama": "no model configured", "headers.latency.ollama": "headers",
}
CATALOGUE = {case.id: case for case in load_catalogue()}
PLACES = gateway_config.Places({"ollama": "http://127.0.0.1:11434",
                                "openai": "http://127.0.0.1:8082",
                                "huggingface": "http://127.0.0.1:8080",
                                "llamacpp": "http://127.0.0.1:8081"}, closed_port=9)


def _mapped(case_id: str) -> dict[str, Any] | str:
    """The model_list entry of one case's route, or the reason it has none."""
    case = CATALOGUE[case_id]
    config, reasons = litellm_config(gateway_config.build([case], PLACES))
    return reasons.get(case_id) or config["model_list"][0]


# ---------------------------------------------------------------------- the mapping, no LiteLLM


def test_each_hosting_maps_to_its_litellm_provider() -> None:
    assert _mapped("core.ollama.chat.json") == {
        "model_name": "llama2",
        "litellm_params": {"model": "ollama_chat/llama2",
                           "api_base": "http://127.0.0.1:11434/api/chat",
                           "tags": ["core.ollama.chat.json"],
                           "max_tokens": 256, "temperature": 0.7},
        "model_info": {"id": "core.ollama.chat.json"},
    }
    generate = _mapped("core.ollama.completions.json")
    assert generate["litellm_params"]["model"] == "ollama/llama2"
    assert generate["litellm_params"]["api_base"] == "http://127.0.0.1:11434/api/generate"
    for case_id in ("core.gguf.chat.json", "core.gguf.completions.json"):
        params = _mapped(case_id)["litellm_params"]
        assert params["model"] == "openai/llama2"
        assert params["api_base"] == "http://127.0.0.1:8082/v1"  # LiteLLM appends the endpoint


def test_route_options_become_litellm_params() -> None:
    params = _mapped("options.config-wins.ollama")["litellm_params"]
    assert (params["max_tokens"], params["temperature"], params["top_k"]) == (64, 0.2, 5)
    assert "top_k" not in _mapped("options.config-wins.gguf")["litellm_params"]  # Kong drops it
    timeout = _mapped("errors.timeout.ollama")["litellm_params"]  # Kong's read_timeout, in ms
    assert timeout["timeout"] == timeout["stream_timeout"] == 0.3


def test_routes_litellm_cannot_express_carry_reasons() -> None:
    assert "raw" in _mapped("seed.huggingface.chat")
    assert "raw" in _mapped("seed.llamacpp.chat")
    assert "auth" in _mapped("auth.header.ollama.override-true.client-true")
    assert "response_streaming" in _mapped("options.streaming-denied")
    assert "max_request_body_size" in _mapped("errors.oversized-body")
    assert "no model configured" in _mapped("model.missing.gguf")
    assert "loopback" in _mapped("errors.dns-failure.gguf")


def test_litellm_config_routes_by_tag_and_never_retries() -> None:
    cases = [CATALOGUE["core.ollama.chat.json"], CATALOGUE["core.gguf.chat.json"]]
    config, reasons = litellm_config(gateway_config.build(cases, PLACES))
    assert reasons == {}
    assert {e["model_name"] for e in config["model_list"]} == {"llama2"}  # one public name
    assert config["router_settings"]["enable_tag_filtering"] is True
    assert config["router_settings"]["num_retries"] == 0


def test_adapt_addresses_litellm() -> None:
    gateway = LiteLLMGateway()
    gateway.entries, gateway.master_key = {"core.gguf.completions.json": "llama2"}, "sk-test"
    case = CATALOGUE["core.gguf.completions.json"]
    url, body, headers = gateway.adapt(case, "http://127.0.0.1:4000", {"prompt": "hi"}, {})
    assert url == "http://127.0.0.1:4000/v1/completions"
    assert body == {"prompt": "hi", "model": "llama2"}
    assert headers == {"Authorization": "Bearer sk-test",
                       "x-litellm-tags": "core.gguf.completions.json"}


def test_litellm_gets_no_credentials_and_no_reason_to_go_online(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OLLAMA_API_KEY", "HTTPS_PROXY", "DATABASE_URL",
                 "LITELLM_LOG"):
        monkeypatch.setenv(name, "from-the-caller")
    env = LiteLLMGateway().environment()
    assert not {"OPENAI_API_KEY", "OLLAMA_API_KEY", "HTTPS_PROXY", "DATABASE_URL",
                "LITELLM_LOG"} & set(env)
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["LITELLM_TELEMETRY_DISABLED"] == "true"
    assert env["NO_PROXY"] == "*"


# ------------------------------------------------------------------- start-up failures, fast


def test_a_litellm_that_dies_is_a_clear_error_with_its_log() -> None:
    gateway = LiteLLMGateway(command=[sys.executable, "-c",
                                      "print('no such option'); raise SystemExit(3)"])
    with pytest.raises(LiteLLMError, match=r"exited with status 3[\s\S]*no such option"):
        gateway.load(gateway_config.build([CATALOGUE["core.ollama.chat.json"]], PLACES))
    assert gateway.process is None and gateway.workdir is None


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (stopped, waiting for whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_a_litellm_that_never_gets_ready_is_stopped_with_all_it_started() -> None:
    # A wrapper (strace, a script) with LiteLLM under it: stopping the wrapper alone is not enough.
    wrapper = ("import subprocess, sys, time; "
               "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
               "print('starting', child.pid, flush=True); time.sleep(60)")
    gateway = LiteLLMGateway(startup_timeout=1, command=[sys.executable, "-c", wrapper])
    with pytest.raises(LiteLLMError, match=r"not ready[\s\S]*starting") as raised:
        gateway.load(gateway_config.build([CATALOGUE["core.ollama.chat.json"]], PLACES))
    assert gateway.process is None and gateway.workdir is None
    child = int(re.search(r"starting (\d+)", str(raised.value)).group(1))
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


# ------------------------------------------------------------------ a real LiteLLM, one start


@pytest.fixture(scope="module")
def run() -> tuple[Report, LiteLLMGateway, dict[str, Any]]:
    gateway = LiteLLMGateway()
    seen: dict[str, Any] = {}

    def progress(_case: Any, _result: Any) -> None:
        seen.setdefault("process", gateway.process)
        seen.setdefault("workdir", gateway.workdir)

    cases = select(load_catalogue(), ids=[*RUN, *NOT_EXPRESSIBLE])
    report = run_catalogue(gateway, cases, progress)
    return report, gateway, seen


def _result(report: Report, case_id: str) -> Any:
    return next(r for r in report.cases if r.id == case_id)


def _chat(case_id: str) -> list[dict[str, Any]]:
    return CATALOGUE[case_id].request.body["messages"]


def _only_request(result: Any) -> dict[str, Any]:
    assert result.outcome != "n/a", result.details
    assert len(result.journal) == 1, result.journal
    return result.journal[0]


def test_ollama_chat_reaches_api_chat_with_the_route_options(run: Any) -> None:
    got = _only_request(_result(run[0], "core.ollama.chat.json"))
    assert (got["method"], got["path"]) == ("POST", "/api/chat")
    body = got["body"]
    assert body["model"] == "llama2" and body["stream"] is False
    # LiteLLM adds "images": [] to every message: the oracle reports that as a difference.
    sent = [{k: m[k] for k in ("role", "content")} for m in body["messages"]]
    assert sent == _chat("core.ollama.chat.json")
    assert body["options"] == {"num_predict": 256, "temperature": 0.7, "top_p": 0.9}
    assert _result(run[0], "core.ollama.chat.json").actual["status"] == 200


def test_ollama_completions_reach_api_generate(run: Any) -> None:
    got = _only_request(_result(run[0], "core.ollama.completions.json"))
    assert (got["method"], got["path"]) == ("POST", "/api/generate")
    assert got["body"] == {"model": "llama2", "prompt": "Complete: the quick brown fox",
                           "options": {"num_predict": 256, "temperature": 0.7, "top_k": 20},
                           "stream": False}


def test_ollama_streams_stream(run: Any) -> None:
    result = _result(run[0], "core.ollama.chat.stream")
    assert _only_request(result)["body"]["stream"] is True
    headers = {k.lower(): v for k, v in result.actual["headers"].items()}
    assert headers["content-type"].startswith("text/event-stream")
    assert "data: [DONE]" in result.actual["body"]


def test_gguf_reaches_the_openai_endpoints(run: Any) -> None:
    chat = _only_request(_result(run[0], "core.gguf.chat.json"))
    assert chat["path"] == "/v1/chat/completions"
    assert chat["body"]["messages"] == _chat("core.gguf.chat.json")
    assert {k: chat["body"][k] for k in ("model", "max_tokens", "temperature", "top_p")} == {
        "model": "llama2", "max_tokens": 256, "temperature": 0.7, "top_p": 0.9}
    completions = _only_request(_result(run[0], "core.gguf.completions.json"))
    assert completions["path"] == "/v1/completions"
    assert completions["body"]["prompt"] == "Complete: the quick brown fox"


def test_replies_name_the_configured_model(run: Any) -> None:
    for case_id in ("core.ollama.chat.json", "core.gguf.chat.json"):
        assert '"model":"llama2"' in _result(run[0], case_id).actual["body"].replace(" ", "")


def test_read_timeout_cuts_a_slow_upstream(run: Any) -> None:
    result = _result(run[0], "errors.timeout.ollama")
    assert len(result.journal) == 1
    assert result.actual["status"] != 200 and result.seconds < 2  # the mock answers after 2 s


def test_expressible_cases_are_judged_and_the_rest_are_na_with_reasons(run: Any) -> None:
    report = run[0]
    for case_id in RUN:
        assert _result(report, case_id).outcome in ("pass", "fail", "deviation")
    for case_id, word in NOT_EXPRESSIBLE.items():
        result = _result(report, case_id)
        assert result.outcome == "n/a", (case_id, result.outcome, result.details)
        assert len(result.details) == 1 and word in result.details[0], (case_id, result.details)
        assert result.journal == []


def test_litellm_is_stopped_and_its_files_removed(run: Any) -> None:
    _report, gateway, seen = run
    assert gateway.started_in is not None and gateway.started_in < gateway.startup_timeout
    assert seen["process"].poll() is not None
    assert not Path(seen["workdir"]).exists()
    assert gateway.process is None and gateway.workdir is None
