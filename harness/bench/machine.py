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
    }


def one_line(found: dict[str, object]) -> str:
    return (f"{found['date']}; {found['cpu']}, {found['cpus']} CPUs; {found['system']}; "
            f"{found['python']}, {found['event_loop']} loop; "
            f"wrk: {found.get('wrk') or 'not installed'}")
