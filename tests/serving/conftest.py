"""Run a foreground server (serve_helper.py, or the proxyproof command) as its own process."""

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


class Served:
    """A server process and the URL it announced."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        for line in self.process.stdout:
            found = re.search(r"(?:listening on|helper:) (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                self.address = ("127.0.0.1", int(self.url.rsplit(":", 1)[1]))
                return
        raise AssertionError(f"no URL printed; stderr: {self.process.stderr.read()}")

    def stderr_line(self, containing: str) -> str:
        """Wait for the first stderr line holding ``containing`` (pytest-timeout bounds it)."""
        for line in self.process.stderr:
            if containing in line:
                return line
        raise AssertionError(f"the process ended without saying {containing!r}")


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """``serve(*arguments)``: serve_helper.py; ``serve("-m", "proxyproof", ...)``: the CLI."""
    started: list[Served] = []

    def start(*arguments: str) -> Served:
        script = [] if arguments[:1] == ("-m",) else [str(HERE / "serve_helper.py")]
        served = Served([sys.executable, *script, *arguments])
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.process.wait(timeout=10)
        served.process.stdout.close()
        served.process.stderr.close()
