"""``proxyproof check --profile properties``: the round-trip properties (``roundtrip.py``) against
any gateway, bounded by ``--max-examples`` per combination and an overall ``--deadline``, reported
per combination in the catalogue's report formats (terminal, JSON, JUnit, Markdown).

A combination passes when every example held; in Kong-compatible mode a pass that showed Kong's
named deviations is a *deviation*; a failure carries the shrunk counterexample; a combination the
gateway cannot express is n/a, one the deadline left out is n/a with that reason."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .hostings import BY_KEY
from .results import CaseResult, Report
from .roundtrip import Combination, CombinationResult, combinations, run_properties

DEFAULT_MAX_EXAMPLES = 25
DEFAULT_DEADLINE = 600.0


def case_result(combo: Combination, result: CombinationResult) -> CaseResult:
    """One combination as a report row (feature ``properties``, the hosting's column)."""
    outcome = {"pass": "pass", "fail": "fail"}.get(result.outcome, "n/a")
    details = [f"{result.examples} example(s) run"]
    if result.reason:
        details.insert(0, result.reason)
    if outcome == "pass" and result.deviations:
        outcome = "deviation"
        details += [f"Kong: {name}" for name in result.deviations]
    if result.counterexample:
        details += ["shrunk counterexample:", *result.counterexample.splitlines()]
    actual: dict[str, Any] = {"examples": result.examples}
    if result.failing_request is not None:
        actual["failing_request"] = result.failing_request
    expected = {"losses": result.losses} if result.losses else {}
    return CaseResult(f"properties.{combo.id}",
                      f"round trip: {combo.hosting} {combo.route}, "
                      f"{'streamed' if combo.stream else 'JSON'}",
                      ("properties",), BY_KEY[combo.hosting].name, outcome,  # type: ignore[arg-type]
                      details, expected, actual, seconds=result.seconds)


def run_properties_command(args: argparse.Namespace, gateway: Any,
                           usage_error: Callable[[str], Exception]) -> int:
    """The ``check --profile properties`` run: exit 1 when a property fails, else 0."""
    from .adapters import GatewayError
    from .reports import finish, make_console

    max_examples = getattr(args, "max_examples", None) or DEFAULT_MAX_EXAMPLES
    deadline = getattr(args, "deadline", None) or DEFAULT_DEADLINE
    if max_examples < 1:
        raise usage_error("--max-examples must be at least 1")
    combos = combinations(",".join(w for w in (args.k or "").replace(" and ", ",").split(",")))
    if not combos:
        raise usage_error("no property combination matches -k (ids look like "
                          "ollama.chat.stream)")
    to_stdout = "-" in (args.json, args.junit, args.markdown)
    console = make_console(sys.stderr if to_stdout else sys.stdout)
    report = Report({"name": gateway.name, "adapter": args.gateway, "profile": "properties",
                     "mode": "Kong-compatible" if args.kong_compat else "reference",
                     "max_examples": max_examples, "deadline_seconds": deadline})
    by_id = {c.id: c for c in combos}

    def progress(result: CombinationResult) -> None:
        console.print(f"{result.outcome:8} {result.id}  ({result.examples} examples, "
                      f"{result.seconds:.1f} s)")

    try:
        results = run_properties(gateway, combos, max_examples, deadline, args.kong_compat,
                                 progress, mock_bind=args.mock_bind, mock_host=args.mock_host)
    except GatewayError as error:
        raise usage_error(str(error)) from None
    report.cases = [case_result(by_id[r.id], r) for r in results]
    report.gateway["examples"] = sum(r.examples for r in results)
    try:
        return finish(report, console, args)
    except ValueError as error:
        raise usage_error(str(error)) from None
