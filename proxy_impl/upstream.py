"""The call to the model server: one request through the pooled client, the retries, and what a
failure means for the client (docs/kong-behaviour.md#upstream-failures).

Failures follow Kong's core: connection refused or a broken response → 502, timeout → 504,
name resolution → 503. Retries follow nginx's ``proxy_next_upstream`` rules, which Kong uses
(``balancer.failover``): a request that never reached the upstream may be tried again; one that
did only when the method is idempotent or ``non_idempotent`` is among the failover criteria.
``send`` is one attempt; the pipeline's failover loop chooses where each goes.

Unlike Kong, which retries at once, attempts are spaced (exponential backoff with jitter,
capped) and retrying stops once it would run past the retry window: ``connect_timeout +
read_timeout`` from the first attempt, as long as one slow attempt may take. So ``retries: 32767``
against a closed port is a handful of attempts, not a tight loop of 32,768.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from multidict import CIMultiDict, MultiDict
from yarl import URL

from . import http_client
from .balancer import failover
from .http_client import Client, Response, Timeouts
from .model import UpstreamPolicy

# How a call to the upstream failed, and the status Kong answers the client with.
UpstreamFailureKind = Literal["refused", "broken", "timeout", "dns"]
FAILURE_STATUS: dict[UpstreamFailureKind, int] = {
    "refused": 502,
    "broken": 502,
    "timeout": 504,
    "dns": 503,
}

BACKOFF_FIRST = 0.01  # seconds before the first retry (at most; at least half of it)
BACKOFF_CAP = 1.0  # the longest wait between two attempts

IDEMPOTENT = failover.IDEMPOTENT


class UpstreamFailure(Exception):
    def __init__(
        self, kind: UpstreamFailureKind, detail: str, *, sent: bool, criterion: str = "error"
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.sent = sent  # whether the request may have reached the upstream
        # The failover criterion it falls under: error, timeout or invalid_header.
        self.criterion = criterion

    @property
    def status(self) -> int:
        return FAILURE_STATUS[self.kind]


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes


@lru_cache(maxsize=256)  # a route's policy is fixed at config load
def attempt_timeout(policy: UpstreamPolicy) -> Timeouts:
    """Each attempt's timeouts: to connect, and between two reads of the response."""
    return Timeouts(connect=policy.connect_timeout / 1000, read=policy.read_timeout / 1000)


async def send(
    client: Client,
    request: UpstreamRequest,
    query: MultiDict[str],
    timeout: Timeouts,
) -> Response:
    """One attempt: the response once its head is in; ``UpstreamFailure`` when there is none."""
    try:
        url = request.url.extend_query(query) if query else request.url
        return await client.request(request.method, url, request.headers, request.body, timeout)
    except Exception as error:  # every client error is classified, none escapes raw
        raise classify(error) from None


class Pacing:
    """When the next attempt may start: after a backoff, and only inside the retry window."""

    def __init__(self, policy: UpstreamPolicy, jitter: Callable[[], float] = random.random):
        self._deadline = time.monotonic() + (policy.connect_timeout + policy.read_timeout) / 1000
        self._jitter = jitter

    def delay(self, made: int) -> float | None:
        """The wait after ``made`` attempts, None when the next would start past the window.

        Doubling from BACKOFF_FIRST up to BACKOFF_CAP, and never under half of that ("equal
        jitter"): attempts never come in a tight loop, and clients that failed together spread
        out.
        """
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(made - 1, 30))
        wait = ceiling / 2 + self._jitter() * ceiling / 2
        return wait if time.monotonic() + wait < self._deadline else None


async def read_body(response: Response) -> bytes:
    """The whole (decompressed) body; a broken or stalled body is a 502/504 like Kong's."""
    try:
        return await response.read()
    except Exception as error:
        raise classify(error, sent=True) from None


def classify(error: BaseException, *, sent: bool = False) -> UpstreamFailure:
    """What a client-side exception means, in Kong's terms; ``sent``: the request had gone out
    (a connection error is then no proof the upstream never saw it). A response head that does
    not parse is nginx's ``invalid_header``; a connection reset or closed before any response is
    its ``error`` (nginx: "upstream prematurely closed connection")."""
    if isinstance(error, http_client.ConnectFailed):  # its kinds are Kong's: dns, refused, timeout
        criterion = "timeout" if error.kind == "timeout" else "error"
        return UpstreamFailure(error.kind, str(error), sent=sent and error.kind != "dns",
                               criterion=criterion)  # fmt: skip
    if isinstance(error, TimeoutError):
        return UpstreamFailure(
            "timeout", "timed out reading the response", sent=True, criterion="timeout"
        )
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, http_client.BadResponse):
        return UpstreamFailure("broken", detail, sent=True, criterion="invalid_header")
    return UpstreamFailure("broken", detail, sent=True)
