"""The balancer checks: for each, its targets, its ``config.balancer``, and how it drives traffic,
faults and latency through a ``Probe`` before judging (``judge``).

Roles (``upstreams``): ``a``, ``b``, ``c`` are Ollama mocks, ``gguf`` an OpenAI-style mock,
``refused`` a port nobody listens on, ``garbage`` a server whose response header is broken."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from . import judge
from .judge import FailoverCase, Traced, trace
from .model import Check, TargetSpec, Verdict, verdict
from .traffic import Probe, Sent

ALPHA = 0.001  # every statistical bound holds at 99.9 % confidence
WEIGHTS = {"a": 60, "b": 30, "c": 10}
WEIGHTED_REQUESTS = 100
# Healthy, one upper target failing, both failing. 16 healthy requests leave an upper target
# unused with probability 2 * 2**-16 under a random choice within the tier.
PRIORITY_PHASES = (16, 8, 4)
LATENCY_REQUESTS, LATENCY_WINDOW, SLOW_SECONDS = 40, 30, 0.05
# Longer than the example route's max_tokens (256), so every reply of it is cut there.
LONG_REPLY = " ".join(["token"] * 400)
HASH_HEADER, HASH_KEYS, HASH_ROUNDS = "X-Proxyproof-Session", 12, 3
REACH_LIMIT = 8  # requests sent to get one to the faulty target
READ_TIMEOUT_MS = 250  # the timeout checks' read_timeout; their upstream waits TIMEOUT_DELAY
TIMEOUT_DELAY = 1.0
MAX_FAILS, FAIL_TIMEOUT_MS = 2, 1000
LONG_FAIL_TIMEOUT_MS = 10_000  # no trial request during a check that must not see one
TRIAL_SLACK = 3.0  # seconds past fail_timeout a trial request may take to come
TIMING_TOLERANCE = 0.05  # seconds: clock reads and scheduling
POLL_PAUSE = 0.025
# Bounded per attempt so that a gateway that hangs cannot stall the run for Kong's 60 s defaults.
TIMEOUTS = {"connect_timeout": 2000, "read_timeout": 10_000}
STATUS_CRITERIA = ("http_403", "http_404", "http_429", "http_500", "http_502", "http_503",
                   "http_504")
UPSTREAM_FAILURE = (502,)  # what Kong core answers for an upstream error or broken header


def _balancer(**fields: Any) -> dict[str, Any]:
    return {**TIMEOUTS, **fields}


def _two(first: str = "a", second: str = "b") -> tuple[TargetSpec, ...]:
    return (TargetSpec(first), TargetSpec(second))


def _traced(probe: Probe, sends: Sequence[Sent]) -> list[Traced]:
    return trace(sends, probe.attempts())


def _reached(probe: Probe, role: str) -> int:
    return len(probe.upstream(role).arrivals())


def _send_until(probe: Probe, done: Callable[[], bool], limit: int, pause: float = 0.0,
                deadline: float | None = None, stream: bool = False) -> list[Sent]:
    """Send one request at a time until ``done()`` holds, ``limit`` requests have gone or the
    ``deadline`` (a ``time.time()``) has passed."""
    sends: list[Sent] = []
    while len(sends) < limit and not done():
        if deadline is not None and time.time() > deadline:
            break
        sends.append(probe.send(stream=stream))
        if pause and not done():
            time.sleep(pause)
    return sends


# --- distribution --------------------------------------------------------------------------------


def _weights(probe: Probe) -> Verdict:
    sends = probe.send_many(WEIGHTED_REQUESTS)
    return judge.weighted_distribution(_traced(probe, sends), WEIGHTS, ALPHA)


def _latency(probe: Probe) -> Verdict:
    probe.upstream("b").fault("latency", seconds=SLOW_SECONDS)
    sends = probe.send_many(LATENCY_REQUESTS)
    return judge.converges(_traced(probe, sends), "a", LATENCY_WINDOW, ALPHA,
                           f"the other answers {int(SLOW_SECONDS * 1000)} ms later")


def _usage(probe: Probe) -> Verdict:
    probe.upstream("a").reply_with(LONG_REPLY)
    probe.upstream("b").reply_with("Hello.")
    sends = probe.send_many(LATENCY_REQUESTS)
    return judge.converges(_traced(probe, sends), "b", LATENCY_WINDOW, ALPHA,
                           "its replies are a few tokens, the other's 256")


def _hashing(probe: Probe) -> Verdict:
    keys = [f"session-{i}" for i in range(HASH_KEYS)]
    sends: dict[str, list[Sent]] = {key: [] for key in keys}
    for _ in range(HASH_ROUNDS):  # interleaved, so a plain rotation splits every value
        for key in keys:
            sends[key].append(probe.send({HASH_HEADER: key}))
    attempts = probe.attempts()
    return judge.stickiness({key: trace(group, attempts) for key, group in sends.items()},
                            probe.check.roles)


def _priority(probe: Probe) -> Verdict:
    phases: dict[str, list[Sent]] = {"healthy": probe.send_many(PRIORITY_PHASES[0])}
    probe.upstream("a").fail_with(503)
    phases["one_down"] = probe.send_many(PRIORITY_PHASES[1])
    probe.upstream("b").fail_with(503)
    phases["all_down"] = probe.send_many(PRIORITY_PHASES[2])
    attempts = probe.attempts()
    return judge.priority({name: trace(sends, attempts) for name, sends in phases.items()},
                          upper=("a", "b"), lower=("c",))


# --- failover ------------------------------------------------------------------------------------


def _failover_once(case: FailoverCase, script: Callable[[Any], None]) -> Callable[[Probe], Verdict]:
    """The faulty target fails its first request only (``script`` sets that up), so a retry may
    land anywhere; requests go until one has met the fault."""

    def run(probe: Probe) -> Verdict:
        script(probe.upstream(case.faulty))
        sends = _send_until(probe, lambda: _reached(probe, case.faulty) > 0, REACH_LIMIT)
        traced = _traced(probe, sends)
        faulted = [t for t in traced if case.faulty in t.roles][:1]
        return judge.failover(case, traced, faulted)

    return run


def _failover_always(case: FailoverCase, count: int = 6) -> Callable[[Probe], Verdict]:
    """A target that fails every request (the broken-header server, a mock scripted always)."""

    def run(probe: Probe) -> Verdict:
        traced = _traced(probe, probe.send_many(count))
        return judge.failover(case, traced, [t for t in traced if case.faulty in t.roles])

    return run


def _refused(case: FailoverCase) -> Callable[[Probe], Verdict]:
    def run(probe: Probe) -> Verdict:
        return judge.refused_failover(case, _traced(probe, probe.send_many(6)))

    return run


def _cross_format(probe: Probe) -> Verdict:
    """An Ollama target failing over to an OpenAI-format one: the retry is re-translated."""
    probe.upstream("a").fail_with(500)
    case = FailoverCase("http_500", "a", True, (), 3)
    traced = _traced(probe, probe.send_many(6))
    faulted = [t for t in traced if "a" in t.roles]
    found = judge.failover(case, traced, faulted)
    problems = [] if found.outcome == "pass" else found.details
    for t in faulted:
        last = t.attempts[-1] if t.attempts else None
        if last is not None and last.role == "gguf" and (
                last.path != "/v1/chat/completions" or '"messages"' not in last.text):
            problems.append(f"the retry reached the OpenAI-format target as {last.path} "
                            f"{last.text[:120]!r}, not an OpenAI chat request")
            break
    return verdict(problems, found.details if not problems else [], found.expected, found.actual)


def _stream_no_retry(probe: Probe) -> Verdict:
    """An upstream that breaks off a stream the client has started to receive: no retry."""
    probe.upstream("a").fault("reset_mid_stream", after_frames=2, times=1)
    case = FailoverCase("error", "a", False, (200,), 1)
    sends = _send_until(probe, lambda: _reached(probe, "a") > 0, REACH_LIMIT, stream=True)
    traced = _traced(probe, sends)
    return judge.failover(case, traced, [t for t in traced if "a" in t.roles][:1])


def _status_script(status: int, times: int | None = 1) -> Callable[[Any], None]:
    if status == 429:  # the server's own rate-limit reply, Retry-After included
        return lambda upstream: upstream.fault("rate_limit", times=times)
    return lambda upstream: upstream.fail_with(status, times=times)


def _failover_checks() -> list[Check]:
    checks: list[Check] = []

    def add(name: str, title: str, criteria: list[str], run: Callable[[Probe], Verdict],
            targets: tuple[TargetSpec, ...] = _two(), **extra: Any) -> None:
        checks.append(Check(f"balancer.failover.{name}", title, "failover", targets,
                            _balancer(failover_criteria=criteria, retries=1, **extra), run))

    def listed(criteria: list[str]) -> str:
        return f"[{', '.join(criteria)}]"

    for criterion in STATUS_CRITERIA:
        status = int(criterion.removeprefix("http_"))
        for listed_ in (True, False):
            criteria = [criterion, "non_idempotent"] if listed_ else [criterion]
            case = FailoverCase(criterion, "a", listed_, (status,), 1)
            add(criterion if listed_ else f"{criterion}.without-non-idempotent",
                f"an upstream {status} is retried on another target with {listed(criteria)}"
                if listed_ else f"an upstream {status} to a POST is not retried without "
                f"non_idempotent ({listed(criteria)}): the client gets the {status}",
                criteria, _failover_once(case, _status_script(status)))
    for name, kind, what in (("error-reset", "reset_before_headers", "a connection reset"),
                             ("error-empty", "empty_response", "a connection closed unanswered")):
        for listed_ in (True, False):
            criteria = ["error", "non_idempotent"] if listed_ else ["error"]
            case = FailoverCase("error", "a", listed_, UPSTREAM_FAILURE, 1)
            add(name if listed_ else f"{name}.without-non-idempotent",
                f"{what} after the POST was sent is retried with {listed(criteria)}" if listed_
                else f"{what} after the POST was sent is not retried with {listed(criteria)}: "
                "the client gets 502",
                criteria, _failover_once(case, lambda up, f=kind: up.fault(f, times=1)))
    for listed_ in (True, False):
        criteria = ["timeout", "non_idempotent"] if listed_ else ["error", "timeout"]
        case = FailoverCase("timeout", "a", listed_, (504,), 1)
        add("timeout" if listed_ else "timeout.without-non-idempotent",
            f"a read timeout ({READ_TIMEOUT_MS} ms) is retried on another target with "
            f"{listed(criteria)}" if listed_ else "a read timeout after the POST was sent is not "
            f"retried with {listed(criteria)}: the client gets 504",
            criteria, _failover_once(case, lambda up: up.fault("latency", seconds=TIMEOUT_DELAY,
                                                               times=1)),
            read_timeout=READ_TIMEOUT_MS)
    for listed_ in (True, False):
        criteria = (["invalid_header", "non_idempotent"] if listed_
                    else ["error", "timeout", "invalid_header"])
        case = FailoverCase("invalid_header", "garbage", listed_, UPSTREAM_FAILURE, 1)
        add("invalid_header" if listed_ else "invalid_header.without-non-idempotent",
            f"a broken response header is retried on another target with {listed(criteria)}"
            if listed_ else "a broken response header to a POST is not retried with "
            f"{listed(criteria)}: the client gets 502",
            criteria, _failover_always(case), _two("garbage", "a"))
    add("error-refused", "a refused connection is retried on another target with [error] "
        "(nothing was sent, so no non_idempotent is needed)", ["error"],
        _refused(FailoverCase("error", "refused", True, (), 1)), _two("refused", "a"))
    add("error-refused.not-listed", "a refused connection is not retried when error is not "
        "listed ([timeout]): the client gets 502", ["timeout"],
        _refused(FailoverCase("error", "refused", False, UPSTREAM_FAILURE, 1)),
        _two("refused", "a"))
    add("http_500.not-listed", "an upstream 500 is not retried when only http_503 is listed",
        ["http_503", "non_idempotent"],
        _failover_once(FailoverCase("http_500", "a", False, (500,), 1), _status_script(500)))
    add("stream-started", "a stream the client has started to receive is never retried, "
        "even with [error, timeout, non_idempotent]", ["error", "timeout", "non_idempotent"],
        _stream_no_retry)
    checks.append(Check(
        "balancer.failover.cross-format", "an Ollama target's 500 fails over to an OpenAI-format "
        "target, the request translated again for it", "failover", _two("a", "gguf"),
        _balancer(failover_criteria=["http_500", "non_idempotent"], retries=3), _cross_format))
    return checks


# --- retries -------------------------------------------------------------------------------------


def _retries(retries: int) -> Callable[[Probe], Verdict]:
    def run(probe: Probe) -> Verdict:
        for role in probe.check.roles:
            probe.upstream(role).fail_with(500)
        return judge.retries_spent(_traced(probe, probe.send_many(3)), retries, 500)

    return run


# --- circuit breaker -----------------------------------------------------------------------------


def _eject(probe: Probe, role: str) -> tuple[list[Sent], float | None]:
    """Requests until ``role`` (failing every request) has had MAX_FAILS; the time of the last."""
    sends = _send_until(probe, lambda: _reached(probe, role) >= MAX_FAILS, 20)
    arrivals = probe.upstream(role).arrivals()
    return sends, arrivals[MAX_FAILS - 1].time if len(arrivals) >= MAX_FAILS else None


def _never_ejected(probe: Probe, role: str) -> Verdict:
    reached = len(probe.upstream(role).arrivals())
    fails = f"{reached} request(s)" if reached else "no request"
    return Verdict("fail", [f"'{role}' got {fails} in 20 tries, never {MAX_FAILS} failures: "
                            "was it ejected before max_fails, or never chosen?"])


def _breaker_opens(probe: Probe) -> Verdict:
    probe.upstream("a").fail_with(500)
    before, since = _eject(probe, "a")
    if since is None:
        return _never_ejected(probe, "a")
    after = probe.send_many(6)
    traced = _traced(probe, after)
    problems = judge.ejected("a", traced, since, 0.8 * FAIL_TIMEOUT_MS / 1000, 3)
    summary = [f"'a' failed {MAX_FAILS} times within {len(before)} requests, then got "
               f"{sum('a' in t.roles for t in traced)} of the next {len(traced)}"]
    return verdict(problems, summary, {"max_fails": MAX_FAILS, "ejected_target_gets": 0},
                   {"until_ejected": judge.rows(_traced(probe, before)),
                    "after": judge.rows(traced)})


def _breaker_half_opens(probe: Probe) -> Verdict:
    a = probe.upstream("a")
    fail_timeout = FAIL_TIMEOUT_MS / 1000
    window = 0.8 * fail_timeout
    a.fail_with(500)
    _, since = _eject(probe, "a")
    if since is None:
        return _never_ejected(probe, "a")
    problems = judge.ejected("a", _traced(probe, probe.send_many(4)), since, window, 3)
    evidence: dict[str, Any] = {}
    trials = []
    for healed in (False, True):
        if healed:
            a.heal()
        want = MAX_FAILS + len(trials) + 1
        polled = _send_until(probe, lambda n=want: _reached(probe, "a") >= n, 1000, POLL_PAUSE,
                             since + fail_timeout + TRIAL_SLACK)
        arrivals = a.arrivals()
        if len(arrivals) < want:
            problems.append(f"no trial request reached 'a' within {fail_timeout + TRIAL_SLACK:g}"
                            f" s of its {'second ' if healed else ''}ejection "
                            f"({len(polled)} requests sent)")
            break
        trial = arrivals[want - 1]
        trials.append(trial)
        problems += judge.trial_timing(trial.time, since, fail_timeout, TIMING_TOLERANCE)
        evidence[f"trial_{len(trials)}_after_ms"] = round(1000 * (trial.time - since))
        if not healed:  # the trial failed: 'a' stays ejected for another fail_timeout
            since = trial.time
            problems += [f"after a failed trial: {p}" for p in judge.ejected(
                "a", _traced(probe, probe.send_many(4)), since, window, 3)]
    if len(trials) == 2:
        back = _traced(probe, probe.send_many(12))
        served = sum(t.served_by == "a" for t in back)
        evidence["a_after_healing"] = f"{served} of {len(back)}"
        if trials[1].status != 200:
            problems.append(f"the healed target answered its trial with {trials[1].status}")
        if not served:
            problems.append("after a successful trial 'a' served none of 12 requests: it was "
                            "not taken back")
    summary = [f"max_fails {MAX_FAILS}, fail_timeout {FAIL_TIMEOUT_MS} ms: trial requests "
               + ", ".join(f"{v} ms" for k, v in evidence.items() if k.startswith("trial_"))
               + " after each ejection"]
    if "a_after_healing" in evidence:
        summary.append(f"once healed, 'a' served {evidence['a_after_healing']} requests")
    return verdict(problems, summary,
                   {"trial_after_ms_at_least": FAIL_TIMEOUT_MS, "one_trial": True,
                    "failed_trial_keeps_it_ejected": True, "successful_trial_heals": True},
                   evidence)


def _breaker_total(probe: Probe) -> Verdict:
    """Failures count in total: a success between two failures does not reset the count (only
    a success after fail_timeout has passed since the last failure does)."""
    a = probe.upstream("a")
    sends: list[Sent] = []
    for n, fails in ((1, True), (2, False), (3, True)):  # a's requests: fail, succeed, fail
        if fails:
            a.fail_with(500, times=1)
        sends += _send_until(probe, lambda n=n: _reached(probe, "a") >= n, REACH_LIMIT)
    arrivals = a.arrivals()
    if len(arrivals) < 3:
        return Verdict("fail", [f"'a' got {len(arrivals)} request(s) in {len(sends)} tries, 3 "
                                "needed (fail, succeed, fail)"])
    outcomes = [arrival.status for arrival in arrivals[:3]]
    after = _traced(probe, probe.send_many(4))
    problems = judge.ejected("a", after, arrivals[2].time, 0.8 * FAIL_TIMEOUT_MS / 1000, 3)
    return verdict(problems, [f"'a' answered {outcomes}, then got "
                              f"{sum('a' in t.roles for t in after)} of the next {len(after)}"],
                   {"max_fails": MAX_FAILS, "ejected_after": "fail, succeed, fail"},
                   {"a_answered": outcomes, "after": judge.rows(after)})


def _breaker_all_unhealthy(probe: Probe) -> Verdict:
    for role in ("a", "b"):
        probe.upstream(role).fail_with(500)
    before = _send_until(probe, lambda: min(_reached(probe, "a"), _reached(probe, "b")) >= 1, 6)
    after = _traced(probe, probe.send_many(3))
    problems = judge.all_unhealthy(after)
    return verdict(problems, [f"both targets failed within {len(before)} requests; the next "
                              f"{len(after)} got {[t.sent.status for t in after]}"],
                   {"client_status": 500, "attempts": 0}, {"after": judge.rows(after)})


def _not_counted(status: int) -> Callable[[Probe], Verdict]:
    def run(probe: Probe) -> Verdict:
        probe.upstream("a").fail_with(status)
        traced = _traced(probe, probe.send_many(16))
        problems = judge.not_ejected(traced, "a", 2)
        problems += judge.answered([t for t in traced if "a" not in t.roles])
        return verdict(problems, [f"'a' answered {status} to {sum('a' in t.roles for t in traced)}"
                                  f" of {len(traced)} requests and stayed in rotation"],
                       {"a_reached_at_least": 2}, {"requests": judge.rows(traced)})

    return run


def _breaker(**fields: Any) -> dict[str, Any]:
    return _balancer(**{"max_fails": MAX_FAILS, "fail_timeout": FAIL_TIMEOUT_MS, "retries": 1,
                        "failover_criteria": ["error", "timeout", "http_500", "non_idempotent"],
                        **fields})


# --- the list ------------------------------------------------------------------------------------


def all_checks() -> list[Check]:
    three = (TargetSpec("a", WEIGHTS["a"]), TargetSpec("b", WEIGHTS["b"]),
             TargetSpec("c", WEIGHTS["c"]))
    return [
        Check("balancer.round-robin.weights",
              f"round-robin shares follow the weights {'/'.join(map(str, WEIGHTS.values()))} "
              f"({WEIGHTED_REQUESTS} requests, chi-square at 99.9 %)",
              "round-robin", three, _balancer(algorithm="round-robin"), _weights),
        Check("balancer.priority.fallback",
              "priority: the weight-10 tier serves only requests both weight-100 targets failed",
              "priority", (TargetSpec("c", 10), TargetSpec("a"), TargetSpec("b")),
              _balancer(algorithm="priority", retries=3,
                        failover_criteria=["error", "timeout", "http_503", "non_idempotent"]),
              _priority),
        Check("balancer.lowest-latency.converges",
              f"lowest-latency (e2e) converges on the fast target ({LATENCY_WINDOW} last of "
              f"{LATENCY_REQUESTS} requests, the other {int(SLOW_SECONDS * 1000)} ms slower)",
              "lowest-latency", _two("b", "a"),
              _balancer(algorithm="lowest-latency", latency_strategy="e2e"), _latency),
        Check("balancer.lowest-usage.converges",
              f"lowest-usage (total-tokens) converges on the target whose replies use fewer "
              f"tokens ({LATENCY_WINDOW} last of {LATENCY_REQUESTS} requests)",
              "lowest-usage", _two(),
              _balancer(algorithm="lowest-usage", tokens_count_strategy="total-tokens"), _usage),
        Check("balancer.consistent-hashing.sticky",
              f"consistent-hashing: one {HASH_HEADER} value, one target; {HASH_KEYS} values "
              "spread", "consistent-hashing", (TargetSpec("a"), TargetSpec("b"), TargetSpec("c")),
              _balancer(algorithm="consistent-hashing", hash_on_header=HASH_HEADER), _hashing),
        *_failover_checks(),
        *(Check(f"balancer.retries.{name}",
                f"retries {n}: a request every target fails is tried exactly {n + 1} time(s)",
                "retries", three, _balancer(retries=n, failover_criteria=["http_500",
                                                                          "non_idempotent"]),
                _retries(n)) for name, n in (("zero", 0), ("two", 2))),
        Check("balancer.breaker.opens",
              f"the circuit breaker ejects a target after max_fails ({MAX_FAILS}) failures",
              "breaker", _two(), _breaker(), _breaker_opens),
        Check("balancer.breaker.half-opens",
              f"after fail_timeout ({FAIL_TIMEOUT_MS} ms) one trial request: a failure keeps the "
              "target out, a success takes it back", "breaker", _two(), _breaker(),
              _breaker_half_opens),
        Check("balancer.breaker.total-failures",
              f"max_fails counts failures in total: fail, succeed, fail ejects at max_fails "
              f"{MAX_FAILS}", "breaker", _two(), _breaker(), _breaker_total),
        Check("balancer.breaker.all-unhealthy",
              "every target ejected: the client gets 500 and no upstream is tried",
              "breaker", _two(), _breaker(fail_timeout=LONG_FAIL_TIMEOUT_MS, max_fails=1),
              _breaker_all_unhealthy),
        Check("balancer.breaker.http_404-not-counted",
              "a listed http_404 fails over but never counts towards max_fails",
              "breaker", _two(), _breaker(fail_timeout=LONG_FAIL_TIMEOUT_MS, max_fails=1,
                       failover_criteria=["http_404", "non_idempotent"]),
              _not_counted(404)),
        Check("balancer.breaker.unlisted-not-counted",
              "an http_500 that is not listed neither fails over nor counts towards max_fails",
              "breaker", _two(), _breaker(fail_timeout=LONG_FAIL_TIMEOUT_MS, max_fails=1,
                       failover_criteria=["error", "timeout"]),
              _not_counted(500)),
    ]
