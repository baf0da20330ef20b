"""AI Proxy Advanced over HTTP, in front of the mocks: failover by the criteria, across formats,
never after stream bytes, ``retries`` respected, the circuit breaker (on a fake clock), and what
the client, the log line and ``GET /status`` say (docs/balancer.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from balancer_support import FakeClock, advanced_config, balanced_proxy, target
from proxy_support import SEED_CHAT, closed_port

from proxyproof.mocks.app import RunningMock, run_mock
from proxyproof.proxy_impl import errors

FAILOVER_5XX = ["error", "timeout", "http_503", "non_idempotent"]


@pytest.fixture(scope="module")
def mocks() -> Iterator[dict[str, RunningMock]]:
    with (
        run_mock("ollama", models=["llama2", "llama2:13b"]) as first,
        run_mock("ollama", models=["llama2", "llama2:13b"]) as second,
        run_mock("openai", models=["llama2-gguf"]) as gguf,
    ):
        yield {"a": first, "b": second, "gguf": gguf}


@pytest.fixture(autouse=True)
def clean(mocks):
    for mock in mocks.values():
        mock.control.reset()


def journal(mock: RunningMock) -> list[dict]:
    return mock.control.journal()


def two(mocks, **balancer) -> dict:
    """Round-robin over a ("llama2") and b ("llama2:13b"): the first request goes to a."""
    targets = [target(mocks["a"].url), target(mocks["b"].url, name="llama2:13b")]
    return advanced_config(targets, **balancer)


# --- choosing and failing over -------------------------------------------------------------------


def test_round_robin_alternates_and_the_header_names_the_target(mocks):
    with balanced_proxy(two(mocks)) as proxy:
        models = [proxy.chat().headers["X-Kong-LLM-Model"] for _ in range(4)]
    assert models == ["llama2/llama2", "llama2/llama2:13b"] * 2
    assert len(journal(mocks["a"])) == len(journal(mocks["b"])) == 2


def test_a_refused_connection_fails_over_without_non_idempotent(mocks):
    dead = f"http://127.0.0.1:{closed_port()}"
    config = advanced_config([target(dead), target(mocks["b"].url, name="llama2:13b")])
    with balanced_proxy(config) as proxy:
        answers = [proxy.chat() for _ in range(4)]
        lines = proxy.lines()
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.headers["X-Kong-LLM-Model"] for a in answers} == {"llama2/llama2:13b"}
    failed_over = [line["balancer"] for line in lines if line["balancer"]["attempts"] == 2]
    assert failed_over, lines
    assert [t.get("failure") or t["status"] for t in failed_over[0]["tries"]] == ["error", 200]
    assert [t["target"] for t in failed_over[0]["tries"]] == [0, 1]


def test_an_upstream_503_fails_over_only_with_non_idempotent(mocks):
    mocks["a"].control.fault("status", status=503, json={"error": "overloaded"})
    with balanced_proxy(two(mocks, failover_criteria=["error", "timeout", "http_503"])) as proxy:
        kept = proxy.chat()
    assert kept.status_code == 503 and kept.json() == {"error": "overloaded"}
    assert "X-Kong-LLM-Model" not in kept.headers
    assert journal(mocks["b"]) == []
    with balanced_proxy(two(mocks, failover_criteria=FAILOVER_5XX)) as proxy:
        moved = proxy.chat()
        (line,) = proxy.lines()
    assert moved.status_code == 200
    assert moved.headers["X-Kong-LLM-Model"] == "llama2/llama2:13b"
    assert [t.get("status") for t in line["balancer"]["tries"]] == [503, 200]


def test_failover_translates_the_request_again_for_an_openai_format_target(mocks):
    mocks["a"].control.fault("status", status=500, json={"error": "boom"})
    targets = [target(mocks["a"].url), target(mocks["gguf"].url, "openai", name="llama2-gguf")]
    config = advanced_config(targets, failover_criteria=["http_500", "non_idempotent"])
    with balanced_proxy(config) as proxy:
        answer = proxy.chat({**SEED_CHAT, "max_tokens": 20})
    assert answer.status_code == 200
    assert answer.headers["X-Kong-LLM-Model"] == "llama2/llama2-gguf"
    assert answer.json()["object"] == "chat.completion"
    (ollama_request,) = journal(mocks["a"])
    (openai_request,) = journal(mocks["gguf"])
    assert ollama_request["path"] == "/api/chat"
    assert ollama_request["body"]["options"]["num_predict"] == 20  # Ollama's shape
    assert openai_request["path"] == "/v1/chat/completions"
    assert openai_request["body"]["model"] == "llama2-gguf"
    assert openai_request["body"]["max_tokens"] == 20  # OpenAI's shape, translated afresh
    assert openai_request["body"]["messages"] == SEED_CHAT["messages"]


def test_a_stream_the_client_has_begun_to_receive_is_never_retried(mocks):
    mocks["a"].control.fault("reset_mid_stream", after_frames=2)
    with balanced_proxy(two(mocks, failover_criteria=FAILOVER_5XX)) as proxy:
        answer = proxy.chat({**SEED_CHAT, "stream": True})
        (line,) = proxy.wait_lines(1)
        (figures, _) = proxy.status()
    assert answer.status_code == 200
    assert answer.headers["X-Kong-LLM-Model"] == "llama2/llama2"
    assert '"error"' in answer.text and answer.text.endswith("data: [DONE]\n\n")
    assert journal(mocks["b"]) == []
    assert line["balancer"]["attempts"] == 1
    assert figures["failed"] == 1  # it counts against the target all the same


@pytest.mark.parametrize(("retries", "expected"), [(0, 1), (1, 2), (4, 5)])
def test_retries_bound_the_attempts(mocks, retries, expected):
    for mock in (mocks["a"], mocks["b"]):
        mock.control.fault("status", status=503, json={"error": "down"})
    config = two(mocks, retries=retries, failover_criteria=FAILOVER_5XX)
    with balanced_proxy(config) as proxy:
        answer = proxy.chat()
        (line,) = proxy.lines()
    assert answer.status_code == 503
    assert line["balancer"]["attempts"] == expected
    assert len(journal(mocks["a"])) + len(journal(mocks["b"])) == expected
    targets = [t["target"] for t in line["balancer"]["tries"]]
    assert targets[:2] == [0, 1][: len(targets)]  # the second attempt goes elsewhere first


# --- the circuit breaker --------------------------------------------------------------------------


def test_the_breaker_ejects_after_max_fails_and_half_opens_after_fail_timeout(mocks):
    clock = FakeClock()
    config = two(mocks, max_fails=2, fail_timeout=1000, retries=1,
                 failover_criteria=["error", "timeout", "http_500", "non_idempotent"])
    a = mocks["a"].control
    a.fault("status", status=500, json={"error": "broken"})
    with balanced_proxy(config, clock=clock) as proxy:
        while len(journal(mocks["a"])) < 2:
            assert proxy.chat().status_code == 200  # failed over to b
        a_status, b_status = proxy.status()
        assert (a_status["health"], a_status["breaker_failures"]) == ("unhealthy", 2)
        assert a_status["seconds_until_trial"] == 1.0
        assert b_status["health"] == "healthy"
        assert all(proxy.chat().status_code == 200 for _ in range(4))
        assert len(journal(mocks["a"])) == 2  # skipped while ejected

        clock.advance(1000)
        assert proxy.status()[0]["health"] == "half-open"
        sent = until_a_is_tried(proxy, mocks, 3)  # round-robin offers a again within 2
        assert [answer.status_code for answer in sent] == [200] * len(sent) and len(sent) <= 2
        assert proxy.status()[0]["health"] == "unhealthy"  # a failed trial keeps it out
        assert all(proxy.chat().status_code == 200 for _ in range(3))
        assert len(journal(mocks["a"])) == 3

        a.clear_scripts()
        clock.advance(1000)
        trial = until_a_is_tried(proxy, mocks, 4)[-1]
        assert trial.headers["X-Kong-LLM-Model"] == "llama2/llama2"  # the trial succeeded
        healed, _ = proxy.status()
        assert (healed["health"], healed["breaker_failures"]) == ("healthy", 0)
        models = [proxy.chat().headers["X-Kong-LLM-Model"] for _ in range(4)]
    assert models.count("llama2/llama2") == 2  # back in the rotation


def until_a_is_tried(proxy, mocks, calls: int) -> list:
    sent = []
    while len(journal(mocks["a"])) < calls and len(sent) < 4:
        sent.append(proxy.chat())
    assert len(journal(mocks["a"])) == calls
    return sent


def test_every_target_ejected_is_a_500_without_an_upstream_call(mocks):
    for mock in (mocks["a"], mocks["b"]):
        mock.control.fault("status", status=500, json={"error": "broken"})
    config = two(mocks, max_fails=1, retries=1,
                 failover_criteria=["http_500", "non_idempotent"])  # fmt: skip
    with balanced_proxy(config, clock=FakeClock()) as proxy:
        assert proxy.chat().status_code == 500  # a, then b: both fail once, both ejected
        calls = len(journal(mocks["a"])) + len(journal(mocks["b"]))
        answer = proxy.chat()
        health = [one["health"] for one in proxy.status()]
    assert calls == 2
    assert answer.status_code == 500
    assert answer.json() == {"message": errors.NO_HEALTHY_TARGET,
                             "request_id": answer.headers["X-Kong-Request-Id"]}  # fmt: skip
    assert len(journal(mocks["a"])) + len(journal(mocks["b"])) == calls
    assert health == ["unhealthy", "unhealthy"]


def test_unlisted_and_404_failures_never_eject(mocks):
    mocks["a"].control.fault("status", status=404, json={"error": "no such model"})
    config = two(mocks, max_fails=1, failover_criteria=["http_404", "non_idempotent"])
    with balanced_proxy(config, clock=FakeClock()) as proxy:
        answers = [proxy.chat() for _ in range(6)]
        a_status, _ = proxy.status()
    assert all(a.status_code == 200 for a in answers)  # each 404 failed over to b
    assert len(journal(mocks["a"])) == 3  # still chosen every other time: never ejected
    assert (a_status["health"], a_status["failed"], a_status["passed"]) == ("healthy", 0, 3)


# --- what /status and the log line say ----------------------------------------------------------


def test_status_and_the_log_line_account_for_every_attempt(mocks):
    mocks["a"].control.fault("status", status=503, json={"error": "busy"}, times=1)
    with balanced_proxy(two(mocks, failover_criteria=FAILOVER_5XX)) as proxy:
        answers = [proxy.chat() for _ in range(3)]
        a_status, b_status = proxy.status()
        lines = proxy.lines()
    assert [a.status_code for a in answers] == [200] * 3
    assert (a_status["attempts"], a_status["failed"], a_status["answered"]) == (2, 1, 1)
    assert (b_status["attempts"], b_status["answered"], b_status["in_flight"]) == (2, 2, 0)
    assert a_status["model"] == "llama2/llama2" and b_status["model"] == "llama2/llama2:13b"
    assert a_status["upstream_url"] == mocks["a"].url + "/api/chat"
    assert b_status["usage"]["completion_tokens"] > 0
    assert b_status["usage"]["total_tokens"] == (
        b_status["usage"]["prompt_tokens"] + b_status["usage"]["completion_tokens"])
    assert b_status["latency_ms"]["e2e_ewma"] > 0 and b_status["latency_ms"]["tpot_ewma"] > 0
    first = lines[0]["balancer"]
    assert (first["target"], first["model"], first["attempts"]) == (1, "llama2/llama2:13b", 2)
    assert first["upstream_url"] == mocks["b"].url + "/api/chat"
    assert [t["target"] for t in first["tries"]] == [0, 1]
    assert first["usage"]["completion_tokens"] > 0
    assert sum(line["balancer"]["attempts"] for line in lines) == 4


def test_ai_proxy_log_lines_have_no_balancer_section(mocks):
    from proxy_support import ai_proxy, declarative, post, running_proxy

    log: list[str] = []
    config = declarative({"/chat": ai_proxy("llm/v1/chat", "ollama", mocks["a"].url + "/api/chat")})
    with running_proxy(config, log=log) as proxy:
        post(proxy.url + "/chat", SEED_CHAT)
    assert '"balancer"' not in log[0]
