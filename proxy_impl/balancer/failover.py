"""What one failed attempt means: may the request go on to another attempt, and does the failure
count against the target's circuit breaker. Pure; the loop that acts on it is the pipeline's.

The rules are nginx's ``proxy_next_upstream``, which ``failover_criteria`` names (kong_semantics
§8): ``error``, ``timeout`` and ``invalid_header`` are failures of the connection or of the
response head; ``http_<status>`` a status the criteria list. A request that may have reached the
upstream goes again only when its method is idempotent or ``non_idempotent`` is listed. LLM calls
are POSTs, so without ``non_idempotent`` only a request that never left (connection refused, a
connect timeout) fails over.

The breaker counts ``error``, ``timeout`` and ``invalid_header`` always, ``http_403`` and
``http_404`` never (they say something about the request, not the server), and any other status
when the criteria list it, whether or not the request may go again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
NEVER_COUNTED = frozenset({403, 404})


@dataclass(slots=True)
class Verdict:
    failure: bool  # the attempt failed: it counts against the target
    retry: bool  # the criteria let the request go on to another attempt
    elsewhere_only: bool = False  # ... but not to the same target again (its name did not resolve)


SUCCESS = Verdict(failure=False, retry=False)


def may_resend(method: str, criteria: Collection[str]) -> bool:
    """Whether a request the upstream may have seen can be sent again."""
    return method.upper() in IDEMPOTENT or "non_idempotent" in criteria


def after_error(
    criterion: str, *, sent: bool, dns: bool, method: str, criteria: Collection[str]
) -> Verdict:
    """An attempt that got no usable response head: ``criterion`` is ``error``, ``timeout`` or
    ``invalid_header``; ``sent``: the request may have reached the upstream."""
    retry = criterion in criteria and (not sent or may_resend(method, criteria))
    # Asking the resolver again at once gives the same answer: another target, or nothing.
    return Verdict(failure=True, retry=retry, elsewhere_only=dns)


def after_status(status: int, *, method: str, criteria: Collection[str]) -> Verdict:
    """An attempt that got a response head with ``status``."""
    listed = f"http_{status}" in criteria
    return Verdict(
        failure=listed and status not in NEVER_COUNTED,
        retry=listed and may_resend(method, criteria),
    )
