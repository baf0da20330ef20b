"""The control token: when a mock has one, every ``/__mock__/`` request must carry
``Authorization: Bearer <token>``. The emulated server's own routes never look at it.

Compared in constant time; the token is never logged, echoed or journaled (control requests are
not journaled, and a journaled header holding it is masked: ``journal``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

ENV_VAR = "PROXYPROOF_CONTROL_TOKEN"
REFUSAL = "the control API requires 'Authorization: Bearer <control token>'"


def authorized(token: str | None, headers: Mapping[str, str]) -> bool:
    if token is None:
        return True
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    presented = value.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, token.encode())
