"""``proxyproof check --profile balancer``: the balancer checks against any gateway the harness
can configure, with the catalogue's live view and report formats (terminal, JSON, JUnit,
Markdown). Exit status 0 when no check fails, 1 when one does."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..catalogue import CatalogueError, matches
from ..results import CaseResult, Report
from .checks import all_checks
from .model import Check
from .run import describe, run_checks


def select(checks: Sequence[Check], ids: Sequence[str], expression: str) -> list[Check]:
    """The checks named by ``ids`` (all when empty) that match the ``-k`` expression;
    ``CatalogueError`` for an unknown id or a bad expression."""
    known = {check.id for check in checks}
    missing = [i for i in ids if i not in known]
    if missing:
        raise CatalogueError(f"unknown balancer check(s) {', '.join(missing)} (see --list)")
    return [check for check in checks
            if (not ids or check.id in ids) and (not expression or matches(check, expression))]


def _listing(checks: Sequence[Check], target: str | None) -> None:
    if target:
        text = json.dumps({"cases": describe(checks)}, indent=2) + "\n"
        if target == "-":
            sys.stdout.write(text)
        else:
            Path(target).write_text(text, encoding="utf-8")
        return
    width = max((len(c.id) for c in checks), default=0)
    for check in checks:
        print(f"{check.id:{width}}  [balancer,{check.group}] {check.title}")
    print(f"{len(checks)} checks")


def run_balancer_command(args: argparse.Namespace, gateway_factory: Callable[[], Any],
                         usage_error: Callable[[str], Exception]) -> int:
    """The ``check --profile balancer`` run. ``gateway_factory`` is called only when checks run
    (``--list`` needs no gateway)."""
    from ..adapters import GatewayError
    from ..reports import LiveProgress, finish, make_console

    try:
        checks = select(all_checks(), args.case or [], args.k or "")
    except CatalogueError as error:
        raise usage_error(str(error)) from None
    if args.list:
        try:
            _listing(checks, args.json)
        except OSError as error:
            raise usage_error(f"cannot write {args.json}: {error.strerror or error}") from None
        return 0
    if not checks:
        raise usage_error("no balancer check matches the selection (see --list)")
    gateway = gateway_factory()
    to_stdout = "-" in (args.json, args.junit, args.markdown)
    console = make_console(sys.stderr if to_stdout else sys.stdout)
    report = Report({"name": gateway.name, "adapter": args.gateway, "profile": "balancer",
                     "mode": "Kong-compatible" if args.kong_compat else "reference"})
    with LiveProgress(total=len(checks), console=console) as live:
        def progress(check: Check, result: CaseResult | None) -> None:
            if result is None:
                live.case_started(check.id, check.title)
            else:
                live.case_finished(result)

        try:
            results, proxy_url = run_checks(gateway, checks, progress,
                                            bind=args.mock_bind, host=args.mock_host)
        except GatewayError as error:
            raise usage_error(str(error)) from None
    report.cases = results
    if proxy_url:
        report.gateway["proxy_url"] = proxy_url
    try:
        return finish(report, console, args)
    except ValueError as error:
        raise usage_error(str(error)) from None
