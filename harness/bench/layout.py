"""Which CPUs the load generator and the servers run on.

The load generator must never compete with the servers for a core, or the benchmark measures the
contention. So it gets the first CPU to itself and the servers get the rest: on a 2-core machine
the mocks and the proxies share the second core (a proxied request then pays for the proxy and the
upstream on one core, which is what the throughput ratio shows); with 3 or more CPUs the mocks
and the proxies get CPUs of their own. Pinning uses ``os.sched_setaffinity`` where the platform
has it; elsewhere, and on a single CPU, nothing is pinned and the report says so.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    load: tuple[int, ...]  # CPUs of the load generator; () = not pinned
    mocks: tuple[int, ...]
    proxies: tuple[int, ...]

    def describe(self) -> str:
        if not self.load:
            return "not pinned (needs 2+ CPUs and os.sched_setaffinity): figures include contention"
        return (f"load generator on CPU {_cpus(self.load)}, mocks on CPU {_cpus(self.mocks)}, "
                f"proxies on CPU {_cpus(self.proxies)}; one process per server")


def plan_layout(cpus: Collection[int], can_pin: bool = True) -> Layout:
    """Pure: the layout for the CPUs this process may run on."""
    ordered = sorted(cpus)
    if not can_pin or len(ordered) < 2:
        return Layout((), (), ())
    load, servers = (ordered[0],), ordered[1:]
    if len(servers) == 1:
        return Layout(load, tuple(servers), tuple(servers))
    return Layout(load, (servers[0],), tuple(servers[1:]))


def current_layout() -> Layout:
    if not hasattr(os, "sched_getaffinity"):
        return plan_layout((), can_pin=False)
    return plan_layout(os.sched_getaffinity(0))


def pin(cpus: Sequence[int]) -> None:
    """Keep the calling process on ``cpus`` (nothing to do for an unpinned layout)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))


def _cpus(cpus: Sequence[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)
