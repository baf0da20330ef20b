"""Running balancer checks against a gateway: start the upstreams, load one config with a route
per check, run each check in turn (every upstream's journal and scripts reset before it) and
turn its verdict into a report row."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..adapters import GatewayError
from ..gateway import Gateway
from ..results import CaseResult
from . import config
from .model import Check, Verdict
from .traffic import Probe, tokens_in
from .upstreams import Upstreams, running_upstreams

HOSTING = "Ollama"  # the column the checks' rows go in (their targets are Ollama mocks)
NOT_KONG_SHAPED = ("this gateway is not configured with Kong's declarative config, so AI Proxy "
                   "Advanced's targets[] and balancer cannot be expressed for it")
SHOWN_ARRIVALS = 40  # the last upstream arrivals a failed check's report shows
Progress = Callable[[Check, CaseResult | None], None]  # (check, None) when it starts


def case_result(check: Check, found: Verdict, seconds: float = 0.0) -> CaseResult:
    return CaseResult(check.id, check.title, ("balancer", check.group), HOSTING, found.outcome,
                      found.details, found.expected, found.actual, route=config.route_path(check),
                      seconds=seconds)


@dataclass
class Prepared:
    """The upstreams running and the gateway loaded (or refusing, with ``refusal`` saying why):
    ``result(check)`` runs one check."""

    upstreams: Upstreams | None
    proxy_url: str = ""
    refusal: Verdict | None = None

    def result(self, check: Check) -> CaseResult:
        if self.refusal is not None or self.upstreams is None:
            return case_result(check, self.refusal or Verdict("n/a", ["not run"]))
        self.upstreams.reset()
        started = time.monotonic()
        probe = Probe(check, self.proxy_url + config.route_path(check), self.upstreams)
        found = check.run(probe)
        result = case_result(check, found, time.monotonic() - started)
        if result.outcome == "fail":  # what the upstreams received, for the failure's report
            result.journal = [{"target": a.role, "path": a.path, "status": a.status,
                               "outcome": a.outcome, "requests": tokens_in(a.text)}
                              for a in probe.arrivals()[-SHOWN_ARRIVALS:]]
        return result


@contextmanager
def prepared(gateway: Gateway, checks: Sequence[Check], *, bind: str = "127.0.0.1",
             host: str | None = None) -> Iterator[Prepared]:
    """The run of ``checks`` on ``gateway``, ready to go; everything stops on exit. An
    in-process gateway that refuses the config fails every check with its reason; one that is
    not Kong-shaped makes them n/a; ``GatewayError`` (an adapter that cannot reach or load its
    gateway) is raised."""
    if getattr(gateway, "adapt", None) is not None:  # addresses requests its own way
        yield Prepared(None, refusal=Verdict("n/a", [NOT_KONG_SHAPED]))
        return
    with running_upstreams(bind, host) as upstreams:
        places = {role: (up.hosting, up.url) for role, up in upstreams.by_role.items()}
        try:
            proxy_url = gateway.load(config.build(checks, places))
        except GatewayError:  # unreachable, or a Kong that refuses: the user's to fix
            gateway.close()
            raise
        except ValueError as error:  # an in-process gateway refusing a valid Kong config
            reason = f"the gateway refused the config: {str(error).splitlines()[0]}"
            gateway.close()
            yield Prepared(None, refusal=Verdict("fail", [reason]))
            return
        try:
            yield Prepared(upstreams, proxy_url)
        finally:
            gateway.close()


def run_checks(gateway: Gateway, checks: Sequence[Check], progress: Progress | None = None, *,
               bind: str = "127.0.0.1", host: str | None = None) -> tuple[list[CaseResult], str]:
    """Each of ``checks`` through ``gateway``, in order; with the proxy URL it served on."""
    results: list[CaseResult] = []
    with prepared(gateway, checks, bind=bind, host=host) as ready:
        for check in checks:
            if progress:
                progress(check, None)
            result = ready.result(check)
            results.append(result)
            if progress:
                progress(check, result)
    return results, ready.proxy_url


def describe(checks: Sequence[Check]) -> list[dict[str, Any]]:
    return [{"id": c.id, "title": c.title, "features": ["balancer", c.group]} for c in checks]
