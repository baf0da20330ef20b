"""A target's circuit breaker (``max_fails``, ``fail_timeout``) as a small state machine over an
injected clock, so its transitions are tested without waiting (docs/balancer.md#circuit-breaker).

- healthy: chosen as usual. Each failure adds to a counter of *total* failures (not consecutive);
  a success resets it only once ``fail_timeout`` has passed since the last failure.
- unhealthy: the counter reached ``max_fails``. Skipped until ``fail_timeout`` has passed since
  the last failure.
- half-open: the time is up. The next request is the one trial; while it runs the target is
  skipped again. Its success heals the target (counter 0), its failure keeps it unhealthy for
  another ``fail_timeout``.

``max_fails: 0`` (Kong's default) turns the breaker off: every target is always healthy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Health = Literal["healthy", "unhealthy", "half-open"]
HEALTHY: Health = "healthy"
UNHEALTHY: Health = "unhealthy"
HALF_OPEN: Health = "half-open"


class Breaker:
    def __init__(self, max_fails: int, fail_timeout_ms: int, clock: Callable[[], float]) -> None:
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout_ms / 1000
        self._clock = clock
        self.failures = 0  # total since the last reset
        self.last_failure: float | None = None  # clock time
        self.ejected = False
        self.trial_running = False

    @property
    def enabled(self) -> bool:
        return self.max_fails > 0

    def health(self) -> Health:
        if not self.ejected:
            return HEALTHY
        if self._since_last_failure() < self.fail_timeout:
            return UNHEALTHY
        return HALF_OPEN

    def available(self) -> bool:
        """Whether a request may be sent to the target now."""
        health = self.health()
        return health == HEALTHY or (health == HALF_OPEN and not self.trial_running)

    def admit(self) -> bool:
        """An attempt starts; True when it is the half-open trial (its end must say so)."""
        if self.health() == HALF_OPEN and not self.trial_running:
            self.trial_running = True
            return True
        return False

    def failed(self, trial: bool) -> None:
        if not self.enabled:
            return
        self.failures += 1
        self.last_failure = self._clock()
        if trial:
            self.trial_running = False
        if self.failures >= self.max_fails:
            self.ejected = True

    def succeeded(self, trial: bool) -> None:
        if not self.enabled:
            return
        if trial:
            self.trial_running = False
            self._heal()
        elif not self.ejected and self._since_last_failure() >= self.fail_timeout:
            self.failures = 0  # the window of the last failure has passed quietly
        # A success of a request sent before the ejection does not heal: only the trial does.

    def abandoned(self, trial: bool) -> None:
        """An attempt ended without a verdict (the client went away): a trial may run again."""
        if trial:
            self.trial_running = False

    def seconds_until_trial(self) -> float | None:
        """While unhealthy, how long until the trial; None otherwise."""
        if self.health() != UNHEALTHY:
            return None
        return max(0.0, self.fail_timeout - self._since_last_failure())

    def _heal(self) -> None:
        self.ejected = False
        self.failures = 0
        self.last_failure = None

    def _since_last_failure(self) -> float:
        if self.last_failure is None:
            return float("inf")
        return self._clock() - self.last_failure
