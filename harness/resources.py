"""What a gateway process holds: resident memory, open descriptors, event-loop tasks.

Read from ``/proc``, so only on Linux and only for a process this one may inspect; whatever
cannot be read is ``None`` rather than a guess."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    rss_kib: int | None = None
    open_fds: int | None = None
    tasks: int | None = None


def process_resources(pid: int, tasks: Callable[[], int | None] = lambda: None) -> Resources:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            rss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")),
                       None)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # not Linux, gone, or not ours to read
        return Resources(tasks=tasks())
    return Resources(rss, fds, tasks())
