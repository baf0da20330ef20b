"""The circuit breaker's transitions over a fake clock, and the failover verdicts: which failures
go on to another attempt and which count against the target (docs/balancer.md#failover,
#circuit-breaker)."""

from __future__ import annotations

import pytest

from proxyproof.proxy_impl.balancer import failover
from proxyproof.proxy_impl.balancer.health import HALF_OPEN, HEALTHY, UNHEALTHY, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fail(breaker: Breaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.failed(breaker.admit())


def test_max_fails_zero_never_ejects(clock):
    breaker = Breaker(0, 10000, clock)
    fail(breaker, 50)
    assert breaker.health() == HEALTHY and breaker.available() and breaker.failures == 0


def test_ejected_at_max_fails_and_skipped_for_fail_timeout(clock):
    breaker = Breaker(3, 10000, clock)
    fail(breaker, 2)
    assert breaker.health() == HEALTHY
    fail(breaker)
    assert breaker.health() == UNHEALTHY and not breaker.available()
    clock.advance(9999)
    assert not breaker.available()
    assert breaker.seconds_until_trial() == pytest.approx(0.001)
    clock.advance(1)
    assert breaker.health() == HALF_OPEN and breaker.available()


def test_the_half_open_target_gets_one_trial_at_a_time(clock):
    breaker = Breaker(1, 500, clock)
    fail(breaker)
    clock.advance(500)
    assert breaker.admit() is True
    assert not breaker.available()  # the trial is running
    assert breaker.admit() is False


def test_a_successful_trial_heals(clock):
    breaker = Breaker(2, 500, clock)
    fail(breaker, 2)
    clock.advance(600)
    breaker.succeeded(breaker.admit())
    assert breaker.health() == HEALTHY and breaker.failures == 0
    fail(breaker)  # counting starts again from zero
    assert breaker.health() == HEALTHY


def test_a_failed_trial_keeps_it_out_for_another_fail_timeout(clock):
    breaker = Breaker(2, 500, clock)
    fail(breaker, 2)
    clock.advance(500)
    breaker.failed(breaker.admit())
    assert breaker.health() == UNHEALTHY
    clock.advance(499)
    assert not breaker.available()
    clock.advance(1)
    assert breaker.available()


def test_an_abandoned_trial_lets_the_next_request_try(clock):
    breaker = Breaker(1, 500, clock)
    fail(breaker)
    clock.advance(500)
    breaker.abandoned(breaker.admit())
    assert breaker.health() == HALF_OPEN and breaker.available()


def test_failures_count_in_total_not_in_a_row(clock):
    breaker = Breaker(2, 1000, clock)
    fail(breaker)
    clock.advance(200)
    breaker.succeeded(breaker.admit())  # within fail_timeout of the failure: no reset
    fail(breaker)
    assert breaker.health() == UNHEALTHY


def test_a_success_after_a_quiet_fail_timeout_resets_the_count(clock):
    breaker = Breaker(2, 1000, clock)
    fail(breaker)
    clock.advance(1000)
    breaker.succeeded(breaker.admit())
    fail(breaker)
    assert breaker.health() == HEALTHY and breaker.failures == 1


def test_a_success_from_before_the_ejection_does_not_heal(clock):
    breaker = Breaker(1, 1000, clock)
    early = breaker.admit()  # a request already under way
    fail(breaker)
    clock.advance(2000)
    breaker.succeeded(early)
    assert breaker.health() == HALF_OPEN


# --- failover verdicts ----------------------------------------------------------------------------

CONNECT = {"sent": False, "dns": False}
SENT = {"sent": True, "dns": False}


@pytest.mark.parametrize(
    ("criterion", "where", "criteria", "retry"),
    [
        ("error", CONNECT, ["error"], True),  # nothing reached the upstream
        ("error", CONNECT, ["timeout"], False),  # not listed
        ("timeout", CONNECT, ["timeout"], True),  # a connect timeout
        ("timeout", SENT, ["error", "timeout"], False),  # a read timeout: the POST was sent
        ("timeout", SENT, ["timeout", "non_idempotent"], True),
        ("error", SENT, ["error"], False),  # a reset after sending
        ("error", SENT, ["error", "non_idempotent"], True),
        ("invalid_header", SENT, ["error", "timeout", "invalid_header"], False),
        ("invalid_header", SENT, ["invalid_header", "non_idempotent"], True),
        ("invalid_header", SENT, ["error", "non_idempotent"], False),
    ],
)
def test_failures_without_a_response_go_on_by_the_criteria(criterion, where, criteria, retry):
    verdict = failover.after_error(criterion, method="POST", criteria=criteria, **where)
    assert (verdict.retry, verdict.failure) == (retry, True)  # these always count


def test_a_name_that_does_not_resolve_goes_elsewhere_only():
    verdict = failover.after_error("error", sent=False, dns=True, method="POST",
                                   criteria=["error"])  # fmt: skip
    assert verdict.retry and verdict.elsewhere_only and verdict.failure


def test_an_idempotent_method_needs_no_non_idempotent():
    assert failover.after_error("timeout", sent=True, dns=False, method="GET",
                                criteria=["timeout"]).retry  # fmt: skip
    assert failover.after_status(503, method="GET", criteria=["http_503"]).retry


@pytest.mark.parametrize("status", [403, 404, 429, 500, 502, 503, 504])
def test_statuses_go_on_only_when_listed_and_with_non_idempotent(status):
    listed = [f"http_{status}"]
    assert not failover.after_status(status, method="POST", criteria=listed).retry
    assert failover.after_status(status, method="POST", criteria=[*listed, "non_idempotent"]).retry
    unlisted = failover.after_status(status, method="POST", criteria=["error", "non_idempotent"])
    assert unlisted == failover.SUCCESS


@pytest.mark.parametrize(("status", "counted"), [(403, False), (404, False), (429, True),
                                                 (500, True), (503, True)])
def test_listed_statuses_count_against_the_target_except_403_and_404(status, counted):
    # Counted whether or not the POST may go on: the breaker judges the target, not the request.
    for criteria in ([f"http_{status}"], [f"http_{status}", "non_idempotent"]):
        assert failover.after_status(status, method="POST", criteria=criteria).failure is counted


def test_success_and_unlisted_statuses_are_no_failure():
    for status in (200, 400, 401, 500):
        assert failover.after_status(status, method="POST", criteria=["error"]) == failover.SUCCESS
