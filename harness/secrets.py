"""Credentials never reach a report: every value a case or a config declares as secret, and the
values of well-known credential headers, become ``***`` before a result is kept."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)
MASK = "***"


class Masker:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if isinstance(s, str) and len(s) >= 3},
                               key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        return value

    def __call__(self, value: Any, key: str = "") -> Any:
        """A masked deep copy of ``value`` (credential headers by name, secrets anywhere)."""
        if isinstance(value, dict):
            return {k: self._header(v) if isinstance(k, str) and k.lower() in CREDENTIAL_HEADERS
                    else self(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def _header(self, value: Any) -> Any:
        if not isinstance(value, str):
            return MASK
        scheme, _, credential = value.partition(" ")
        return f"{scheme} {MASK}" if credential and scheme.lower() in ("bearer", "basic") else MASK


def secrets_in_plugin(config: Any) -> list[str]:
    """The credential values of an ai-proxy(-advanced) plugin config: auth header/param values."""
    found: list[str] = []
    targets = config.get("targets") if isinstance(config, dict) else None
    for target in targets if isinstance(targets, list) else [config]:
        auth = target.get("auth") if isinstance(target, dict) else None
        if isinstance(auth, dict):
            for name in ("header_value", "param_value"):
                if isinstance(auth.get(name), str):
                    value = auth[name]
                    found.append(value)
                    scheme, _, credential = value.partition(" ")
                    if credential:
                        found.append(credential)
    return found
