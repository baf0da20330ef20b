"""The call to the model server: one request through the pooled client, the retries, and what a
failure means for the client (docs/kong-behaviour.md#upstream-failures).

Failures follow Kong's core: connection refused or a broken response → 502, timeout → 504,
name resolution → 503. Retries follow nginx's ``proxy_next_upstream`` rules, which Kong uses
(``balancer.failover``): a request that never reached the upstream may be tried again; one that
did only when the method is idempotent or ``non_idempotent`` is among the failover criteria.
``send`` is one attempt; the pipeline's failover loop chooses where each goes, and
``open_response`` is that loop for one fixed upstream.

Unlike Kong, which retries at once, attempts are spaced (exponential backoff with jitter,
capped) and retrying stops once it would run past the retry window: ``connect_timeout +
read_timeout`` from the first attempt, as long as one slow attempt may take. So ``retries: 32767``
against a closed port is a handful of attempts, not a tight loop of 32,768.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import aiohttp
from multidict import CIMultiDict, MultiDict
from yarl import URL

from .balancer import failover
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


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    url: URL
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Attempts:
    """How many calls were made and how long the last one waited for the upstream."""

    count: int = 0
    upstream_ms: int = 0


@lru_cache(maxsize=256)  # a route's policy is fixed at config load; ClientTimeout is frozen
def attempt_timeout(policy: UpstreamPolicy) -> aiohttp.ClientTimeout:
    """Each attempt's timeouts: to connect, and between two reads of the response."""
    return aiohttp.ClientTimeout(
        total=None,
        sock_connect=policy.connect_timeout / 1000,
        sock_read=policy.read_timeout / 1000,
    )


async def send(
    session: aiohttp.ClientSession,
    request: UpstreamRequest,
    query: MultiDict[str],
    timeout: aiohttp.ClientTimeout,
) -> aiohttp.ClientResponse:
    """One attempt: the response once its head is in; ``UpstreamFailure`` when there is none."""
    try:
        return await session.request(
            request.method,
            request.url,
            params=query,
            headers=request.headers,
            data=request.body,
            timeout=timeout,
            allow_redirects=False,
        )
    except Exception as error:  # every client error is classified, none escapes raw
        raise classify(error) from None


async def open_response(
    session: aiohttp.ClientSession,
    request: UpstreamRequest,
    query: MultiDict[str],
    policy: UpstreamPolicy,
    attempts: Attempts,
) -> aiohttp.ClientResponse:
    """Send the request to its one upstream, retrying as nginx would; the caller reads (and
    releases) the response."""
    timeout = attempt_timeout(policy)
    criteria = policy.failover_criteria
    pacing = Pacing(policy)
    while True:
        attempts.count += 1
        last_try = attempts.count > policy.retries
        started = time.monotonic()
        try:
            response = await send(session, request, query, timeout)
        except UpstreamFailure as failure:
            attempts.upstream_ms = _ms_since(started)
            verdict = failover.after_error(
                failure.criterion, sent=failure.sent, dns=failure.kind == "dns",
                method=request.method, criteria=criteria,
            )  # fmt: skip
            retry = verdict.retry and not verdict.elsewhere_only
            delay = None if last_try or not retry else pacing.delay(attempts.count)
            if delay is None:
                raise
            await asyncio.sleep(delay)
            continue
        attempts.upstream_ms = _ms_since(started)
        verdict = failover.after_status(response.status, method=request.method, criteria=criteria)
        delay = None if last_try or not verdict.retry else pacing.delay(attempts.count)
        if delay is None:
            return response
        response.release()
        await asyncio.sleep(delay)


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


async def read_body(response: aiohttp.ClientResponse) -> bytes:
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
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return UpstreamFailure("dns", str(error), sent=False)
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return UpstreamFailure("timeout", "timed out connecting", sent=sent, criterion="timeout")
    if isinstance(error, aiohttp.ClientConnectorError):
        return UpstreamFailure("refused", str(error), sent=sent)
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamFailure(
            "timeout", "timed out reading the response", sent=True, criterion="timeout"
        )
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, aiohttp.ClientResponseError):
        return UpstreamFailure("broken", detail, sent=True, criterion="invalid_header")
    return UpstreamFailure("broken", detail, sent=True)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
