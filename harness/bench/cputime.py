"""CPU time used by other processes (the servers under test), read from Linux's ``/proc``.

Wall-clock throughput depends on who else runs on the machine; CPU time per request does not (or
far less). So the load generator reads the servers' CPU time at both ends of a counted run, and
the report can say "requests per CPU-second": what one core fully given to the server answers.
Where ``/proc`` is missing (macOS, Windows) the figures are simply absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


TICKS = _ticks_per_second()


def parse_stat(stat: str) -> float:
    """User + system CPU seconds from the text of ``/proc/<pid>/stat`` (pure)."""
    # The command name (field 2) may hold spaces and parentheses: count fields after its ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 (utime) and 15 (stime)


def cpu_seconds(pids: Iterable[int]) -> float | None:
    """The CPU seconds the processes have used so far, summed; None if any cannot be read."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
                total += parse_stat(file.read())
        except (OSError, ValueError, IndexError):
            return None
    return total
