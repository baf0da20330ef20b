"""The balancer checks' decisions: pure functions from what the client got and where each request
went (``Traced``) to a ``Verdict`` with its evidence. Expectations come from Kong's documented
semantics (the reference's ``kong_semantics.md`` §8) and nginx's ``proxy_next_upstream``, which
Kong applies to AI Proxy Advanced's ``failover_criteria``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Verdict, verdict
from .stats import binomial_threshold, binomial_upper_tail, goodness_of_fit
from .traffic import Sent
from .upstreams import Arrival


@dataclass(frozen=True)
class Traced:
    """One client request: the gateway's answer and the attempts the upstreams saw, in order."""

    sent: Sent
    attempts: tuple[Arrival, ...]

    @property
    def roles(self) -> list[str]:
        return [attempt.role for attempt in self.attempts]

    @property
    def served_by(self) -> str | None:
        """The target whose answer reached the client: the last one tried, when it got 200."""
        return self.attempts[-1].role if self.sent.status == 200 and self.attempts else None

    def row(self) -> dict[str, Any]:
        """The request as evidence: its status and the targets it was tried on."""
        return {"status": self.sent.status, "attempts": self.roles}


def trace(sends: Iterable[Sent], attempts: Mapping[str, list[Arrival]]) -> list[Traced]:
    return [Traced(sent, tuple(attempts.get(sent.token, ()))) for sent in sends]


def rows(traced: Iterable[Traced]) -> list[dict[str, Any]]:
    return [t.row() for t in traced]


def _percent(share: float) -> str:
    return f"{100 * share:.3g} %"


def attempts_bound(traced: Iterable[Traced], retries: int) -> list[str]:
    """Problems with ``attempts <= retries + 1`` (Kong: retries after a failed attempt)."""
    over = [t for t in traced if len(t.attempts) > retries + 1]
    return [f"a request was tried {len(t.attempts)} times ({', '.join(t.roles)}) with retries "
            f"{retries}: at most {retries + 1} attempts" for t in over[:3]]


def answered(traced: Sequence[Traced]) -> list[str]:
    """Problems with every request having been answered 200 by a target."""
    bad = [t for t in traced if t.served_by is None]
    if not bad:
        return []
    shown = "; ".join(f"{t.sent.status} after {t.roles or 'no attempt'}" for t in bad[:3])
    return [f"{len(bad)} of {len(traced)} requests were not answered 200 by a target ({shown})"]


# --- distribution -------------------------------------------------------------------------------


def weighted_distribution(traced: Sequence[Traced], weights: Mapping[str, int],
                          alpha: float) -> Verdict:
    """Round-robin: the targets' shares of the requests follow their weights (Pearson's
    chi-square at level ``alpha``)."""
    problems = answered(traced)
    served = Counter(t.served_by for t in traced if t.served_by is not None)
    expected: dict[str, Any] = {"weights": dict(weights), "alpha": alpha}
    if problems or not served:
        return verdict(problems or ["no request was answered"], [], expected,
                       {"counts": dict(served), "requests": len(traced)})
    fit = goodness_of_fit(dict(served), weights, alpha)
    expected.update({"counts": {k: round(v, 1) for k, v in fit.expected.items()},
                     "chi_square_at_most": round(fit.critical, 3), "df": fit.df})
    actual = {"counts": fit.observed, "chi_square": round(fit.statistic, 3),
              "p_value": float(f"{fit.p_value:.3g}")}
    counts = ", ".join(f"{role} {fit.observed[role]} (expected {fit.expected[role]:.1f})"
                       for role in weights)
    summary = [f"{len(traced)} requests: {counts}",
               f"chi-square {fit.statistic:.2f} against {fit.critical:.2f} (df {fit.df}, "
               f"{_percent(1 - alpha)} confidence), p = {fit.p_value:.3g}"]
    if not fit.fits:
        problems.append("the shares do not follow the weights: chi-square "
                        f"{fit.statistic:.2f} > {fit.critical:.2f}")
    return verdict(problems, summary, expected, actual)


def converges(traced: Sequence[Traced], favoured: str, window: int, alpha: float,
              why: str) -> Verdict:
    """Lowest-latency, lowest-usage: of the last ``window`` requests the ``favoured`` target
    answers significantly more than half (an exact binomial test against 50 % at level
    ``alpha``); Kong documents ~90-99 % for the fastest target once its average has settled.
    ``why``: what makes that target the right one."""
    problems = answered(traced)
    last = traced[-window:]
    count = sum(t.served_by == favoured for t in last)
    threshold = binomial_threshold(len(last), 0.5, alpha)
    expected = {"favoured_target": favoured, "because": why,
                f"favoured_of_last_{len(last)}_at_least": threshold, "alpha": alpha}
    actual = {"last_window": dict(Counter(t.served_by or "none" for t in last)),
              "all": dict(Counter(t.served_by or "none" for t in traced)),
              "order": [t.served_by for t in traced]}
    summary = [f"'{favoured}' ({why}) answered {count} of the last {len(last)} (of "
               f"{len(traced)}) requests; at least {threshold} needed, which a 50/50 choice "
               f"reaches with probability {binomial_upper_tail(len(last), 0.5, threshold):.2g}",
               f"P(>= {count} of {len(last)} by a 50/50 choice) = "
               f"{binomial_upper_tail(len(last), 0.5, count):.2g}"]
    if count < threshold:
        problems.append(f"did not converge on '{favoured}' ({why}): {count} of the last "
                        f"{len(last)} requests went to it, {threshold} needed")
    return verdict(problems, summary, expected, actual)


def stickiness(by_key: Mapping[str, Sequence[Traced]], roles: Sequence[str]) -> Verdict:
    """Consistent-hashing: every request with the same header value goes to one target; the
    values spread over more than one target."""
    traced = [t for group in by_key.values() for t in group]
    problems = answered(traced)
    placed = {key: sorted({t.served_by or "none" for t in group}) for key, group in by_key.items()}
    split = {key: where for key, where in placed.items() if len(where) > 1}
    used = Counter(where[0] for where in placed.values() if len(where) == 1)
    keys = len(by_key)
    per_key = min((len(group) for group in by_key.values()), default=0)
    # A fair hash puts every value on one target with probability n * (1/n)^keys.
    all_on_one = len(roles) * (1 / len(roles)) ** keys if roles else 1.0
    expected = {"same_target_per_value": True, "targets_used_at_least": 2,
                "values": keys, "requests_per_value": per_key}
    actual = {"targets_per_value": placed, "values_per_target": dict(used)}
    summary = [f"{keys} header values x {per_key} requests: "
               f"{keys - len(split)} values stuck to one target; values per target "
               f"{dict(used) or {}}",
               f"a fair hash puts all {keys} values on one target with probability "
               f"{all_on_one:.2g}"]
    if split:
        shown = "; ".join(f"{key} -> {', '.join(where)}" for key, where in list(split.items())[:3])
        problems.append(f"{len(split)} of {keys} header values went to more than one target "
                        f"({shown})")
    if len(used) < 2 and not split:
        problems.append(f"every header value went to the same target ({next(iter(used), '-')}):"
                        " the values do not spread")
    return verdict(problems, summary, expected, actual)


# --- priority ------------------------------------------------------------------------------------


def priority(phases: Mapping[str, Sequence[Traced]], upper: Sequence[str],
             lower: Sequence[str]) -> Verdict:
    """Priority: the upper tier (the highest weight) serves while any of it is up; the lower tier
    serves only requests every upper target has failed. ``phases``: ``healthy``, ``one_down``
    (one upper target failing), ``all_down`` (every upper target failing)."""
    problems: list[str] = []
    summary: list[str] = []
    actual: dict[str, Any] = {}
    for name, traced in phases.items():
        problems += [f"{name}: {p}" for p in answered(traced)]
        to_lower = [t for t in traced if set(t.roles) & set(lower)]
        actual[name] = {"served_by": dict(Counter(t.served_by or "none" for t in traced)),
                        "requests_tried_on_lower_tier": len(to_lower)}
        summary.append(f"{name}: {len(traced)} requests served by "
                       f"{dict(Counter(t.served_by or 'none' for t in traced))}")
        if name in ("healthy", "one_down") and to_lower:
            problems.append(f"{name}: {len(to_lower)} request(s) reached the lower tier "
                            f"({', '.join(lower)}) while an upper target was up")
    healthy = phases.get("healthy", ())
    unused = [role for role in upper if not any(t.served_by == role for t in healthy)]
    if healthy and unused:
        problems.append(f"healthy: upper-tier target(s) {', '.join(unused)} served nothing: "
                        "the tier is not balanced across its targets")
    for t in phases.get("all_down", ()):
        if t.served_by not in lower:
            problems.append(f"all_down: a request was served by {t.served_by or 'nobody'} "
                            f"(tried {t.roles}), not by the lower tier")
            break
        first_lower = next(i for i, role in enumerate(t.roles) if role in lower)
        missing = set(upper) - set(t.roles[:first_lower])
        if missing:
            problems.append(f"all_down: the lower tier was tried before "
                            f"{', '.join(sorted(missing))} had failed (attempts {t.roles})")
            break
    expected = {"upper_tier": list(upper), "lower_tier": list(lower),
                "lower_tier_only_after_every_upper_target_failed": True}
    return verdict(problems, summary, expected, actual)


# --- failover ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailoverCase:
    """What a failover check provoked and what it expects: ``fails_over`` when the criterion is
    listed (and, for a POST already sent, ``non_idempotent`` too); otherwise the client gets
    ``failure_status`` from a single attempt."""

    criterion: str  # the failover_criteria item the fault stands for
    faulty: str  # the role that fails
    fails_over: bool
    failure_status: tuple[int, ...]
    retries: int


def failover(case: FailoverCase, traced: Sequence[Traced], faulted: Sequence[Traced]) -> Verdict:
    """``faulted``: the requests that met the fault (their attempt on the faulty target failed)."""
    problems = attempts_bound(traced, case.retries)
    expected: dict[str, Any] = {"criterion": case.criterion, "fails_over": case.fails_over,
                                "attempts_at_most": case.retries + 1}
    if not case.fails_over:
        expected["client_status"] = list(case.failure_status)
        expected["attempts"] = 1
    actual = {"requests": rows(traced), "faulted": rows(faulted)}
    if not faulted:
        return verdict([*problems, f"no request was sent to the failing target "
                        f"'{case.faulty}' in {len(traced)} tries"], [], expected, actual)
    for t in faulted:
        at = t.roles.index(case.faulty) if case.faulty in t.roles else -1
        after = t.roles[at + 1:] if at >= 0 else t.roles
        if case.fails_over:
            if t.sent.status != 200 or not after:
                problems.append(f"no failover on {case.criterion}: the client got "
                                f"{t.sent.status} after attempts {t.roles or ['(unseen)']}")
        elif after or len(t.attempts) > 1:
            problems.append(f"failed over on {case.criterion} although it must not: attempts "
                            f"{t.roles}")
        elif t.sent.status not in case.failure_status:
            problems.append(f"the client got {t.sent.status} for the {case.criterion} failure "
                            f"instead of {' or '.join(map(str, case.failure_status))}")
    others = [t for t in traced if t not in faulted]
    problems += answered(others)
    shown = "; ".join(f"{t.sent.status} via {' -> '.join(t.roles) or '(unseen)'}"
                      for t in faulted[:3])
    summary = [f"{len(faulted)} request(s) met the {case.criterion} fault on '{case.faulty}': "
               f"{shown}"]
    return verdict(problems, summary, expected, actual)


def refused_failover(case: FailoverCase, traced: Sequence[Traced]) -> Verdict:
    """A target whose port refuses connections: it sees nothing, so the requests it was chosen
    for show as the ones no upstream saw. With ``error`` listed every request is answered 200
    (the request was never sent, so no ``non_idempotent`` is needed); without it, those requests
    get ``failure_status`` and no other target sees them."""
    problems = attempts_bound(traced, case.retries)
    unseen = [t for t in traced if not t.attempts]
    expected: dict[str, Any] = {"criterion": case.criterion, "fails_over": case.fails_over}
    actual = {"requests": rows(traced)}
    if case.fails_over:
        problems += answered(traced)
        summary = [f"{len(traced)} requests, every one answered 200 "
                   f"(served by {dict(Counter(t.served_by or 'none' for t in traced))})"]
        return verdict(problems, summary, expected, actual)
    expected["client_status_when_refused"] = list(case.failure_status)
    if not unseen:
        problems.append(f"every one of {len(traced)} requests reached an upstream: the refusing "
                        "target was never chosen, or its failures were retried elsewhere")
    for t in unseen:
        if t.sent.status not in case.failure_status:
            problems.append(f"a refused request got {t.sent.status}, expected "
                            f"{' or '.join(map(str, case.failure_status))}")
            break
    seen = [t for t in traced if t.attempts]
    problems += answered(seen)
    retried = [t for t in seen if len(t.attempts) > 1]
    if retried:
        problems.append(f"{len(retried)} request(s) were retried: {rows(retried[:3])}")
    summary = [f"{len(unseen)} of {len(traced)} requests met the refusing target and got "
               f"{sorted({t.sent.status for t in unseen})}; the others were answered once"]
    return verdict(problems, summary, expected, actual)


def retries_spent(traced: Sequence[Traced], retries: int, status: int) -> Verdict:
    """Every target failing with a listed status: each request is tried exactly
    ``retries + 1`` times (there are enough targets), then the client gets the failure."""
    problems = []
    counts = Counter(len(t.attempts) for t in traced)
    for t in traced:
        if len(t.attempts) != retries + 1:
            problems.append(f"a request was tried {len(t.attempts)} time(s) ({t.roles}); "
                            f"retries {retries} means exactly {retries + 1} when every try fails")
            break
    bad_status = sorted({t.sent.status for t in traced if t.sent.status != status})
    if bad_status:
        problems.append(f"the client got {bad_status} once retries ran out, expected {status}")
    summary = [f"{len(traced)} requests, attempts per request {dict(counts)} "
               f"(retries {retries})"]
    return verdict(problems, summary, {"attempts": retries + 1, "client_status": status},
                   {"requests": rows(traced)})


# --- circuit breaker -----------------------------------------------------------------------------


def ejected(target: str, after: Sequence[Traced], since: float, window: float,
            least: int) -> list[str]:
    """Problems with ``target`` being skipped by the requests ``after`` sent within ``window``
    seconds of ``since`` (when it was ejected); ``least`` of them are needed to tell."""
    inside = [t for t in after if t.sent.ended <= since + window]
    problems = []
    if len(inside) < least:
        problems.append(f"only {len(inside)} request(s) ended within {window:g} s of the "
                        f"ejection, {least} needed to judge: the gateway answered too slowly")
    reached = [t for t in inside if target in t.roles]
    if reached:
        problems.append(f"'{target}' still got {len(reached)} of {len(inside)} requests sent "
                        f"while it should be ejected")
    return problems + answered(inside)


def trial_timing(trial: float, since: float, fail_timeout: float, tolerance: float) -> list[str]:
    """Problems with a trial request at ``trial`` for an ejection at ``since``."""
    early = since + fail_timeout - tolerance - trial
    if early > 0:
        return [f"the trial request came {1000 * (trial - since):.0f} ms after the ejection, "
                f"before fail_timeout ({1000 * fail_timeout:.0f} ms)"]
    return []


def not_ejected(traced: Sequence[Traced], target: str, least: int) -> list[str]:
    """Problems with ``target`` still being chosen (``least`` times at least) although its
    failures must not count towards ``max_fails``."""
    reached = sum(target in t.roles for t in traced)
    if reached < least:
        return [f"'{target}' got only {reached} of {len(traced)} requests: it was ejected, "
                f"although these failures do not count towards max_fails"]
    return []


def all_unhealthy(traced: Sequence[Traced]) -> list[str]:
    """Problems with Kong's 500 when every target is ejected (no upstream may be tried)."""
    problems = []
    tried = [t for t in traced if t.attempts]
    if tried:
        problems.append(f"{len(tried)} request(s) still reached an ejected target: "
                        f"{rows(tried[:3])}")
    statuses = sorted({t.sent.status for t in traced if t.sent.status != 500})
    if statuses:
        problems.append(f"the client got {statuses} with every target ejected, expected 500")
    return problems
