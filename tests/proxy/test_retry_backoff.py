"""Retries are paced (issue 9): backoff with jitter between attempts, and no attempt after the
retry window (connect_timeout + read_timeout), so Kong's maximum of 32,767 retries against a
closed port ends soon, after a handful of attempts."""

from __future__ import annotations

import json
import time

from proxy_support import (
    CHAT,
    SEED_CHAT,
    advanced,
    ai_proxy,
    closed_port,
    declarative,
    post,
    running_proxy,
)

from proxyproof.proxy_impl import upstream
from proxyproof.proxy_impl.model import UpstreamPolicy

# Kong's most retries, in a window (connect_timeout + read_timeout) of about a second. The connect
# timeout takes nearly all of it so that no attempt can time out on a loaded machine (a refused
# connect is then the only failure, and the answer a 502, not a 504); nothing is ever read.
DEAD_END = {"retries": 32767, "connect_timeout": 1000, "read_timeout": 1}


def test_32767_retries_against_a_closed_port_end_within_the_window():
    url = f"http://127.0.0.1:{closed_port()}/api/chat"
    config = declarative({"/chat": {"plugin": "ai-proxy-advanced",
                                    "config": advanced(ai_proxy(CHAT, "ollama", url))}},
                         service=DEAD_END)  # fmt: skip
    log: list[str] = []
    with running_proxy(config, log=log) as proxy:
        started = time.monotonic()
        answer = post(proxy.url + "/chat", SEED_CHAT)
        elapsed = time.monotonic() - started
    assert answer.status_code == 502
    assert elapsed < 5  # the window is 1 s; a loaded machine gets room
    # Waits double from 5-10 ms: 7-9 attempts fit in 1 s; without backoff it was thousands.
    attempts = json.loads(log[-1])["balancer"]["attempts"]
    assert 2 <= attempts <= 12, attempts


def test_waits_double_stay_at_least_half_and_stop_at_the_cap():
    pacing = upstream.Pacing(UpstreamPolicy(connect_timeout=10**9, read_timeout=10**9),
                              jitter=lambda: 0.0)  # fmt: skip
    waits = [pacing.delay(made) for made in (1, 2, 3, 5, 20, 32767)]
    first, cap = upstream.BACKOFF_FIRST, upstream.BACKOFF_CAP
    assert waits == [first / 2, first, first * 2, first * 8, cap / 2, cap / 2]
    most = upstream.Pacing(UpstreamPolicy(), jitter=lambda: 1.0)
    assert most.delay(32767) == cap


def test_no_wait_is_begun_that_would_end_past_the_window():
    pacing = upstream.Pacing(UpstreamPolicy(connect_timeout=1, read_timeout=1))
    assert pacing.delay(20) is None  # 0.5 s or more, in a 2 ms window


def test_through_the_proxy_a_dead_upstream_with_maximum_retries_is_a_prompt_502():
    url = f"http://127.0.0.1:{closed_port()}/api/chat"
    config = declarative({"/chat": ai_proxy(CHAT, "ollama", url)}, service=DEAD_END)
    with running_proxy(config) as proxy:
        started = time.monotonic()
        answer = post(proxy.url + "/chat", SEED_CHAT)
        elapsed = time.monotonic() - started
    assert answer.status_code == 502
    assert elapsed < 5
