"""The balancer profile (``proxyproof check --profile balancer``): its statistics and decisions as
pure functions, and the whole profile against a faithful fake balancer and against fakes that get
one thing wrong, each caught by exactly the checks about that thing."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from balancer_fake import fake_balancer

from proxyproof.cli import main
from proxyproof.harness.balancer import all_checks, judge, run_checks, stats
from proxyproof.harness.balancer.command import run_balancer_command, select
from proxyproof.harness.balancer.judge import FailoverCase, Traced
from proxyproof.harness.balancer.traffic import Sent, attempts_by_token, tokens_in
from proxyproof.harness.balancer.upstreams import Arrival, closed_port
from proxyproof.harness.gateway import InProcessGateway
from proxyproof.harness.results import CaseResult

CHECKS = all_checks()


def _checks(*ids: str) -> list[Any]:
    return select(CHECKS, list(ids), "")


def _traced(status: int, *roles: str, ended: float = 0.0, statuses: dict[str, int] | None = None
            ) -> Traced:
    sent = Sent("ppb0000000000000000", status, "", 0.0, ended, {})
    return Traced(sent, tuple(Arrival(role, float(i), "", "/api/chat",
                                      (statuses or {}).get(role, 200))
                              for i, role in enumerate(roles)))


def _by_id(results: list[CaseResult]) -> dict[str, CaseResult]:
    return {result.id: result for result in results}


# ------------------------------------------------------------------------------- statistics


def test_chi_square_matches_published_tables() -> None:
    assert stats.chi_square_critical(1, 0.05) == pytest.approx(3.841, abs=1e-3)
    assert stats.chi_square_critical(2, 0.001) == pytest.approx(13.816, abs=1e-3)
    assert stats.chi_square_critical(5, 0.01) == pytest.approx(15.086, abs=1e-3)
    assert stats.chi_square_sf(18.307, 10) == pytest.approx(0.05, abs=1e-4)
    assert stats.chi_square_sf(0, 3) == 1.0


def test_binomial_threshold_is_the_least_count_rare_under_the_null() -> None:
    threshold = stats.binomial_threshold(30, 0.5, 0.001)
    assert threshold == 24
    assert stats.binomial_upper_tail(30, 0.5, threshold) <= 0.001
    assert stats.binomial_upper_tail(30, 0.5, threshold - 1) > 0.001
    assert stats.binomial_upper_tail(10, 0.5, 0) == 1.0
    assert stats.binomial_upper_tail(10, 0.5, 11) == 0.0


def test_goodness_of_fit_refuses_counts_for_targets_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown categories: z"):
        stats.goodness_of_fit({"a": 3, "z": 1}, {"a": 1, "b": 1}, 0.001)


# ------------------------------------------------------------------------------- decisions


def test_tokens_find_each_request_among_the_attempts() -> None:
    arrivals = [Arrival("b", 2.0, '{"m": "ppb00000000000000aa"}'),
                Arrival("a", 1.0, '{"m": "hello ppb00000000000000aa"}'),
                Arrival("c", 3.0, "no token")]
    found = attempts_by_token(arrivals)
    assert [a.role for a in found["ppb00000000000000aa"]] == ["a", "b"]
    assert tokens_in("x ppb0123456789abcdef y") == ["ppb0123456789abcdef"]


def test_weights_pass_when_shares_follow_them_and_fail_when_they_do_not() -> None:
    weights = {"a": 60, "b": 30, "c": 10}
    faithful = [_traced(200, r) for r in ["a"] * 90 + ["b"] * 45 + ["c"] * 15]
    assert judge.weighted_distribution(faithful, weights, 0.001).outcome == "pass"
    even = [_traced(200, r) for r in ["a", "b", "c"] * 50]
    found = judge.weighted_distribution(even, weights, 0.001)
    assert found.outcome == "fail"
    assert "chi-square" in found.details[0] and found.actual["counts"] == {"a": 50, "b": 50,
                                                                           "c": 50}
    lost = faithful[:-1] + [_traced(502)]
    assert judge.weighted_distribution(lost, weights, 0.001).outcome == "fail"


def test_lowest_latency_needs_the_fast_target_to_dominate_the_last_window() -> None:
    converged = [_traced(200, "b")] * 10 + [_traced(200, "a")] * 28 + [_traced(200, "b")] * 2
    assert judge.converges(converged, "a", 30, 0.001, "fast").outcome == "pass"
    alternating = [_traced(200, r) for r in ["a", "b"] * 20]
    found = judge.converges(alternating, "a", 30, 0.001, "fast")
    assert found.outcome == "fail" and "15 of the last 30" in found.details[0]


def test_stickiness_needs_one_target_per_value_and_a_spread() -> None:
    good = {f"k{i}": [_traced(200, "abc"[i % 3])] * 3 for i in range(6)}
    assert judge.stickiness(good, ("a", "b", "c")).outcome == "pass"
    split = {**good, "k0": [_traced(200, "a"), _traced(200, "b")]}
    found = judge.stickiness(split, ("a", "b", "c"))
    assert found.outcome == "fail" and "k0 -> a, b" in found.details[0]
    one = {f"k{i}": [_traced(200, "a")] * 3 for i in range(6)}
    assert "do not spread" in judge.stickiness(one, ("a", "b", "c")).details[0]


def test_priority_keeps_the_lower_tier_for_requests_the_whole_upper_tier_failed() -> None:
    phases = {"healthy": [_traced(200, "a"), _traced(200, "b")],
              "one_down": [_traced(200, "a", "b")],
              "all_down": [_traced(200, "a", "b", "c"), _traced(200, "b", "a", "c")]}
    assert judge.priority(phases, ("a", "b"), ("c",)).outcome == "pass"
    early = {**phases, "one_down": [_traced(200, "a", "c")]}
    assert "reached the lower tier" in judge.priority(early, ("a", "b"), ("c",)).details[0]
    skipped = {**phases, "all_down": [_traced(200, "a", "c")]}
    assert "before b had failed" in judge.priority(skipped, ("a", "b"), ("c",)).details[0]


def test_failover_judges_the_request_that_met_the_fault() -> None:
    listed = FailoverCase("http_500", "a", True, (500,), 1)
    retried = _traced(200, "a", "b")
    assert judge.failover(listed, [retried], [retried]).outcome == "pass"
    stopped = _traced(500, "a")
    assert "no failover on http_500" in judge.failover(listed, [stopped], [stopped]).details[0]
    unlisted = FailoverCase("http_500", "a", False, (500,), 1)
    assert judge.failover(unlisted, [stopped], [stopped]).outcome == "pass"
    assert "although it must not" in judge.failover(unlisted, [retried], [retried]).details[0]
    wrong = _traced(502, "a")
    assert "instead of 500" in judge.failover(unlisted, [wrong], [wrong]).details[0]
    assert "no request was sent" in judge.failover(listed, [_traced(200, "b")], []).details[0]
    too_many = _traced(200, "a", "a", "b")
    assert "at most 2 attempts" in judge.failover(listed, [too_many], [too_many]).details[0]


def test_refused_connections_are_judged_by_the_requests_no_upstream_saw() -> None:
    listed = FailoverCase("error", "refused", True, (), 1)
    assert judge.refused_failover(listed, [_traced(200, "a")] * 4).outcome == "pass"
    assert judge.refused_failover(listed, [_traced(502), _traced(200, "a")]).outcome == "fail"
    unlisted = FailoverCase("error", "refused", False, (502,), 1)
    assert judge.refused_failover(unlisted, [_traced(502), _traced(200, "a")]).outcome == "pass"
    assert "never chosen" in judge.refused_failover(unlisted, [_traced(200, "a")]).details[0]
    assert judge.refused_failover(unlisted, [_traced(504)]).outcome == "fail"


def test_retries_are_spent_exactly_when_every_target_fails() -> None:
    assert judge.retries_spent([_traced(500, "a", "b", "c")], 2, 500).outcome == "pass"
    found = judge.retries_spent([_traced(500, "a")], 2, 500)
    assert "exactly 3" in found.details[0]
    assert judge.retries_spent([_traced(502, "a", "b", "c")], 2, 500).outcome == "fail"


def test_breaker_decisions() -> None:
    skipped = [_traced(200, "b", ended=0.1)] * 3
    assert judge.ejected("a", skipped, 0.0, 0.8, 3) == []
    reached = judge.ejected("a", [*skipped, _traced(200, "a", "b", ended=0.2)], 0.0, 0.8, 3)
    assert "'a' still got 1 of 4" in reached[0]
    late = judge.ejected("a", [_traced(200, "b", ended=5.0)] * 3, 0.0, 0.8, 3)
    assert "too slowly" in late[0]
    assert judge.trial_timing(1.02, 0.0, 1.0, 0.05) == []
    assert "before fail_timeout" in judge.trial_timing(0.5, 0.0, 1.0, 0.05)[0]
    assert judge.all_unhealthy([_traced(500)]) == []
    assert judge.all_unhealthy([_traced(500, "a")]) != []
    assert judge.not_ejected([_traced(200, "a", "b")] * 2, "a", 2) == []
    assert judge.not_ejected([_traced(200, "a", "b")], "a", 2) != []


# ------------------------------------------------------------------------------- the profile


def test_the_list_names_every_behaviour_of_the_issue() -> None:
    ids = {check.id for check in CHECKS}
    assert len(ids) == len(CHECKS)
    for criterion in ("http_403", "http_404", "http_429", "http_500", "http_502", "http_503",
                      "http_504", "timeout", "invalid_header"):
        assert f"balancer.failover.{criterion}" in ids
        assert f"balancer.failover.{criterion}.without-non-idempotent" in ids
    assert {"balancer.failover.error-refused", "balancer.failover.error-reset",
            "balancer.round-robin.weights", "balancer.priority.fallback",
            "balancer.lowest-latency.converges", "balancer.consistent-hashing.sticky",
            "balancer.breaker.opens", "balancer.breaker.half-opens",
            "balancer.retries.two"} <= ids


def test_a_faithful_balancer_passes_every_check() -> None:
    # All but the slowest (the breaker's two fail_timeouts, the converging algorithms' slow or
    # long replies): the bundled proxy's run below passes those, their decisions are tested
    # above and the early-trial flaw fails the breaker's.
    slow = ("balancer.breaker.half-opens", "balancer.lowest-latency.converges",
            "balancer.lowest-usage.converges")
    checks = [c for c in CHECKS if c.id not in slow]
    results, proxy_url = run_checks(fake_balancer(), checks)
    assert proxy_url.startswith("http://127.0.0.1:")
    assert {r.id: r.details for r in results if r.outcome != "pass"} == {}
    weights = _by_id(results)["balancer.round-robin.weights"]
    assert weights.actual["counts"] == {"a": 60, "b": 30, "c": 10}  # smooth round-robin: exact


def test_a_balancer_that_ignores_weights_fails_the_weights_check() -> None:
    results, _ = run_checks(fake_balancer("ignore-weights"),
                            _checks("balancer.round-robin.weights", "balancer.failover.http_500"))
    found = _by_id(results)
    assert found["balancer.round-robin.weights"].outcome == "fail"
    assert "do not follow the weights" in found["balancer.round-robin.weights"].details[0]
    shown = found["balancer.round-robin.weights"].journal
    assert len(shown) == 40 and {entry["target"] for entry in shown} == {"a", "b", "c"}
    assert found["balancer.failover.http_500"].journal == []  # only failures show arrivals
    assert found["balancer.failover.http_500"].outcome == "pass"


def test_a_balancer_that_retries_posts_on_status_codes_fails_those_checks_only() -> None:
    ids = ["balancer.failover.http_500", "balancer.failover.http_500.without-non-idempotent",
           "balancer.failover.http_429.without-non-idempotent",
           "balancer.failover.timeout.without-non-idempotent"]
    results = _by_id(run_checks(fake_balancer("retry-post-http"), _checks(*ids))[0])
    assert {i: r.outcome for i, r in results.items()} == {
        ids[0]: "pass", ids[1]: "fail", ids[2]: "fail", ids[3]: "pass"}
    assert "failed over on http_500 although it must not" in results[ids[1]].details[0]


def _says(result: CaseResult, *phrases: str) -> bool:
    return result.outcome == "fail" and any(p in d for d in result.details for p in phrases)


def test_breaker_flaws_are_caught() -> None:
    no_breaker = _by_id(run_checks(fake_balancer("no-breaker"), _checks(
        "balancer.breaker.opens", "balancer.breaker.all-unhealthy"))[0])
    assert _says(no_breaker["balancer.breaker.opens"], "should be ejected")
    assert _says(no_breaker["balancer.breaker.all-unhealthy"], "still reached an ejected target")
    early = _by_id(run_checks(fake_balancer("early-trial"),
                              _checks("balancer.breaker.half-opens"))[0])
    # Back after a tenth of fail_timeout: seen as an early trial, or as the target not skipped.
    assert _says(early["balancer.breaker.half-opens"], "before fail_timeout", "should be ejected")
    consecutive = _by_id(run_checks(fake_balancer("consecutive"), _checks(
        "balancer.breaker.total-failures", "balancer.breaker.opens"))[0])
    assert consecutive["balancer.breaker.opens"].outcome == "pass"
    assert _says(consecutive["balancer.breaker.total-failures"], "should be ejected")


def test_a_gateway_that_refuses_the_config_fails_every_check_with_its_reason() -> None:
    def refuse(config: dict[str, Any]) -> Any:
        raise ValueError("ai-proxy-advanced: targets: only one target is supported\nmore")

    results, _ = run_checks(InProcessGateway(refuse, "refusing"), _checks(
        "balancer.retries.zero", "balancer.breaker.opens"))
    assert [(r.outcome, r.details) for r in results] == [
        ("fail", ["the gateway refused the config: ai-proxy-advanced: targets: only one "
                  "target is supported"])] * 2


def test_an_unreachable_gateway_is_a_usage_error(capsys: Any) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["check", "--profile", "balancer", "-k", "retries.zero", "--gateway", "kong",
              "--admin-url", f"http://127.0.0.1:{closed_port()}",
              "--proxy-url", "http://127.0.0.1:9"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Admin API at http://127.0.0.1:" in err and "cannot be reached" in err
    assert "Traceback" not in err


def test_a_gateway_that_is_not_kong_shaped_is_not_applicable() -> None:
    class NotKong:
        name = "not Kong"

        def adapt(self, *args: Any) -> Any:
            raise AssertionError("not called")

    results, _ = run_checks(NotKong(), _checks("balancer.retries.zero"))  # type: ignore[arg-type]
    assert results[0].outcome == "n/a" and "targets[]" in results[0].details[0]


def _args(**given: Any) -> argparse.Namespace:
    defaults = {"case": None, "k": None, "list": False, "json": None, "junit": None,
                "markdown": None, "gateway": "bundled", "kong_compat": False,
                "mock_bind": "127.0.0.1", "mock_host": None}
    return argparse.Namespace(**{**defaults, **given})


def test_the_command_writes_the_harness_reports(tmp_path: Any, capsys: Any) -> None:
    paths = {kind: tmp_path / f"report.{kind}" for kind in ("json", "junit", "markdown")}
    status = run_balancer_command(_args(k="retries", **{k: str(p) for k, p in paths.items()}),
                                  lambda: fake_balancer(), ValueError)
    assert status == 0
    report = json.loads(paths["json"].read_text())
    assert report["gateway"]["profile"] == "balancer"
    assert report["summary"]["pass"] == 2
    assert [c["expected"]["attempts"] for c in report["cases"]] == [1, 3]
    suite = ET.parse(paths["junit"]).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    assert "| retries | 2 ✅ |" in paths["markdown"].read_text()
    assert "2 pass" in capsys.readouterr().out


def test_the_command_line_lists_and_refuses_mixed_profiles(capsys: Any) -> None:
    with pytest.raises(SystemExit) as listed:
        main(["check", "--profile", "balancer", "--list", "-k", "breaker"])
    assert listed.value.code == 0
    out = capsys.readouterr().out
    assert "balancer.breaker.half-opens" in out and out.rstrip().endswith("6 checks")
    with pytest.raises(SystemExit) as mixed:
        main(["check", "--profile", "balancer,core"])
    assert mixed.value.code == 2
    assert "--profile balancer runs alone" in capsys.readouterr().err
    with pytest.raises(SystemExit) as unknown:
        main(["check", "--profile", "balancer", "--case", "balancer.nope"])
    assert unknown.value.code == 2
    assert "unknown balancer check(s) balancer.nope" in capsys.readouterr().err


def test_the_bundled_proxy_passes_every_check_as_pytest_tests(tmp_path: Any) -> None:
    """The issue's harness cases against the bundled proxy, through the pytest plugin."""
    # Without the Hypothesis and schemathesis plugins: they take most of pytest's start-up here.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
         "-p", "no:schemathesis", "-q", "-rA", "--proxyproof-catalogue",
         "--proxyproof-profile", "balancer"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(CHECKS)} passed" in run.stdout
    assert "PASSED ::balancer.breaker.half-opens" in run.stdout
