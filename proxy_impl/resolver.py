"""Name resolution for upstream calls: the system's, except for names that can never resolve.

RFC 6761 reserves ``.invalid``: resolvers and libraries should answer it negatively at once
rather than ask the network. The proxy does so, which is also how the conformance harness
provokes Kong's 503 "name resolution failed" without any DNS traffic."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import abc
from aiohttp.resolver import DefaultResolver

NEVER_RESOLVES = (".invalid", ".invalid.")


class UpstreamResolver(abc.AbstractResolver):
    def __init__(self, inner: abc.AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET
                      ) -> list[dict[str, Any]]:
        name = host.lower()
        if name == "invalid" or name.endswith(NEVER_RESOLVES):
            raise OSError(socket.EAI_NONAME, f"{host}: a reserved name that never resolves")
        return await self._inner.resolve(host, port, family)

    async def close(self) -> None:
        await self._inner.close()
