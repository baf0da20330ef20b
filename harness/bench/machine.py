"""What machine a benchmark ran on, and when: figures mean little without it."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys

from proxyproof.serving import event_loop_name

from . import wrk


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _wrk_version() -> str | None:
    program = wrk.executable()
    if program is None:
        return None
    try:
        shown = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (shown.stdout or shown.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def describe() -> dict[str, object]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpus": usable,
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "event_loop": event_loop_name(),
        "wrk": _wrk_version(),
        # other work at the start: figures taken beside it move with it
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def one_line(found: dict[str, object]) -> str:
    line = (f"{found['date']}; {found['cpu']}, {found['cpus']} CPUs; {found['system']}; "
            f"{found['python']}, {found['event_loop']} loop; "
            f"wrk: {found.get('wrk') or 'not installed'}")
    if found.get("load_average") is not None:
        line += f"; load average {found['load_average']} at the start"
    if found.get("stolen") is not None:
        line += f"; CPU time taken by the host: {found['stolen']:.0%} during the run"
    return line


def cpu_times() -> tuple[int, int] | None:
    """(stolen, all) clock ticks of the machine's CPUs so far, from ``/proc/stat``; None
    elsewhere. "Stolen" is the time a virtual machine's CPUs were ready to run and the host ran
    something else: the noise no pinning avoids."""
    try:
        with open("/proc/stat", encoding="ascii") as file:
            return parse_cpu_line(file.readline())
    except (OSError, ValueError, IndexError):
        return None


def parse_cpu_line(line: str) -> tuple[int, int]:
    """(steal, total) from ``/proc/stat``'s first line (pure): user, nice, system, idle, iowait,
    irq, softirq, steal; the guest fields that follow are counted in user already."""
    name, *fields = line.split()
    if name != "cpu":
        raise ValueError(f"not the all-CPU line of /proc/stat: {line!r}")
    ticks = [int(field) for field in fields[:8]]
    return (ticks[7] if len(ticks) == 8 else 0), sum(ticks)


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all CPU time between two ``cpu_times()`` that the host took."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)
