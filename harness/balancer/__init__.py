"""The balancer profile (``proxyproof check --profile balancer``): AI Proxy Advanced's
``targets[]`` and ``config.balancer`` checked on any gateway the harness can configure, by
statistics over many requests and by the mocks' scripted faults and latency, rather than by
single request/response cases. ``docs/balancer-profile.md`` lists the checks and their bounds.

    from proxyproof.harness.balancer import all_checks, run_checks
    results, proxy_url = run_checks(gateway, all_checks())
"""

from __future__ import annotations

from .checks import all_checks
from .model import Check, Verdict
from .run import run_checks

__all__ = ["Check", "Verdict", "all_checks", "run_checks"]
