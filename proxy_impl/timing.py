"""The request's clock behind Kong's latency headers (``X-Kong-*-Latency``, integer ms)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Timing:
    """When the request came in, went upstream and was answered (``time.monotonic``)."""

    started: float = field(default_factory=time.monotonic)
    proxied_at: float | None = None  # when the upstream request went out
    answered_at: float | None = None  # when the upstream body was in

    def mark_proxied(self) -> None:
        self.proxied_at = time.monotonic()

    def mark_answered(self) -> None:
        self.answered_at = time.monotonic()

    def proxied_headers(self) -> dict[str, str]:
        """Kong's headers for a response that came from the upstream."""
        proxied = self.proxied_at or self.started
        answered = self.answered_at or time.monotonic()
        return {
            "X-Kong-Upstream-Latency": str(_ms(answered - proxied)),
            "X-Kong-Proxy-Latency": str(_ms(proxied - self.started)),
        }

    def local_headers(self) -> dict[str, str]:
        """Kong's header for a response the proxy generated itself."""
        return {"X-Kong-Response-Latency": str(self.elapsed_ms())}

    def elapsed_ms(self) -> int:
        return _ms(time.monotonic() - self.started)


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
