"""Running balancer checks against a gateway: start the upstreams, load one config with a route
per check, run each check in turn (every upstream's journal and scripts reset before it) and
turn its verdict into a report row."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..adapters import GatewayError
from ..gateway import Gateway
from ..results import CaseResult
from . import config
from .model import Check, Verdict
from .traffic import Probe
from .upstreams import running_upstreams

HOSTING = "Ollama"  # the column the checks' rows go in (their targets are Ollama mocks)
NOT_KONG_SHAPED = ("this gateway is not configured with Kong's declarative config, so AI Proxy "
                   "Advanced's targets[] and balancer cannot be expressed for it")
Progress = Callable[[Check, CaseResult | None], None]  # (check, None) when it starts


def case_result(check: Check, found: Verdict, seconds: float = 0.0) -> CaseResult:
    return CaseResult(check.id, check.title, ("balancer", check.group), HOSTING, found.outcome,
                      found.details, found.expected, found.actual, route=config.route_path(check),
                      seconds=seconds)


def run_checks(gateway: Gateway, checks: Sequence[Check], progress: Progress | None = None, *,
               bind: str = "127.0.0.1", host: str | None = None) -> tuple[list[CaseResult], str]:
    """Each of ``checks`` through ``gateway``, in order; with the proxy URL it served on. A
    gateway that refuses the config fails every check with its reason."""
    if getattr(gateway, "adapt", None) is not None:  # addresses requests its own way
        return [case_result(check, Verdict("n/a", [NOT_KONG_SHAPED])) for check in checks], ""
    results: list[CaseResult] = []
    with running_upstreams(bind, host) as upstreams:
        places = {role: (up.hosting, up.url) for role, up in upstreams.by_role.items()}
        try:
            proxy_url = gateway.load(config.build(checks, places))
        except (GatewayError, ValueError) as error:
            gateway.close()
            reason = f"the gateway refused the config: {str(error).splitlines()[0]}"
            return [case_result(check, Verdict("fail", [reason])) for check in checks], ""
        try:
            for check in checks:
                if progress:
                    progress(check, None)
                upstreams.reset()
                started = time.monotonic()
                found = check.run(Probe(check, proxy_url + config.route_path(check), upstreams))
                result = case_result(check, found, time.monotonic() - started)
                results.append(result)
                if progress:
                    progress(check, result)
        finally:
            gateway.close()
    return results, proxy_url


def describe(checks: Sequence[Check]) -> list[dict[str, Any]]:
    return [{"id": c.id, "title": c.title, "features": ["balancer", c.group]} for c in checks]
