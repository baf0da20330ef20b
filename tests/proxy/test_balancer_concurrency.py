"""200 requests at once across three targets (two Ollama hosts and an OpenAI-format llama.cpp), one
of the Ollama hosts failing every request (the breaker on): every request is answered, none takes
more than ``retries + 1`` attempts, and the attempts add up three ways — the log lines,
``GET /status`` and the mocks' journals."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from balancer_support import FakeClock, advanced_config, balanced_proxy, target
from proxy_support import SEED_CHAT

from proxyproof.mocks.app import RunningMock, run_mock

REQUESTS = 200
RETRIES = 2


@pytest.fixture(scope="module")
def mocks() -> Iterator[list[RunningMock]]:
    with (
        run_mock("ollama") as healthy,
        run_mock("ollama") as failing,
        run_mock("llamacpp") as llamacpp,
    ):
        yield [healthy, failing, llamacpp]


async def send_all(url: str, count: int = REQUESTS) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False,
                                 headers={"Accept-Encoding": "identity"}) as client:  # fmt: skip
        return await asyncio.gather(*(client.post(url, json=SEED_CHAT) for _ in range(count)))


def test_concurrent_requests_keep_every_invariant(mocks):
    for mock in mocks:
        mock.control.reset()
    mocks[1].control.fault("status", status=503, json={"error": "overloaded"})
    targets = [target(mocks[0].url), target(mocks[1].url),
               target(mocks[2].url, "openai", name="llama2-gguf", weight=50)]  # fmt: skip
    config = advanced_config(targets, retries=RETRIES, max_fails=3,
                             failover_criteria=["error", "timeout", "http_503", "non_idempotent"])
    with balanced_proxy(config, clock=FakeClock()) as proxy:  # the clock stands: no trial
        answers = asyncio.run(send_all(proxy.url + "/chat"))
        status = proxy.status()
        lines = proxy.wait_lines(REQUESTS)
    journals = [len(mock.control.journal()) for mock in mocks]

    # No request lost: each answered 200 by a healthy target, each logged once.
    assert Counter(answer.status_code for answer in answers) == {200: REQUESTS}
    assert {a.headers["X-Kong-LLM-Model"] for a in answers} <= {"llama2/llama2",
                                                              "llama2/llama2-gguf"}
    assert len({line["request_id"] for line in lines}) == REQUESTS
    # Attempts within retries + 1; a failed attempt is followed by one elsewhere.
    attempts = [line["balancer"]["attempts"] for line in lines]
    assert max(attempts) <= RETRIES + 1
    for line in lines:
        tries = line["balancer"]["tries"]
        assert tries[-1].get("status") == 200 and tries[-1]["target"] != 1
        assert all(t["target"] == 1 and t["status"] == 503 for t in tries[:-1])
    # Per-target counts add up: the log, /status and the journals agree.
    logged = Counter(t["target"] for line in lines for t in line["balancer"]["tries"])
    assert [logged[i] for i in range(3)] == [s["attempts"] for s in status] == journals
    assert sum(journals) == sum(attempts)
    for shown in status:
        assert shown["in_flight"] == 0
        assert shown["attempts"] == (shown["answered"] + shown["passed"] + shown["failed"]
                                     + shown["abandoned"])  # fmt: skip
    assert status[1]["failed"] == journals[1] and status[1]["answered"] == 0
    assert status[0]["answered"] + status[2]["answered"] == REQUESTS
    # All 200 were placed before the first failure came back, so even with the breaker the
    # failing target had its round-robin share; the next test shows the burst after ejection.
    assert status[1]["health"] == "unhealthy"


def test_an_ejected_target_gets_none_of_the_next_burst(mocks):
    for mock in mocks:
        mock.control.reset()
    mocks[1].control.fault("status", status=503, json={"error": "overloaded"})
    targets = [target(mocks[1].url), target(mocks[0].url)]
    config = advanced_config(targets, retries=1, max_fails=1,
                             failover_criteria=["http_503", "non_idempotent"])  # fmt: skip
    with balanced_proxy(config, clock=FakeClock()) as proxy:
        first = proxy.chat()  # round-robin: the failing target first, then the other
        burst = asyncio.run(send_all(proxy.url + "/chat", 50))
    assert first.status_code == 200
    assert Counter(answer.status_code for answer in burst) == {200: 50}
    assert len(mocks[1].control.journal()) == 1
    assert len(mocks[0].control.journal()) == 51
