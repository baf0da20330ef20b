"""``proxyproof bench``: speed measured as ratios against a direct call, never as timed asserts.

Layout: a load generator process pinned to one CPU, and a process per server (each mock kind,
each hosting's proxy) on the other CPU(s) (``layout``). The load generator speaks a minimal
HTTP/1.1 (``http1``) so that it costs less per request than the servers it measures; it runs
``load.Run``s sent over a pipe (``servers.LoadGenerator``). ``scenario`` decides what to
measure, ``results`` holds the figures and their ratios, ``report`` prints them.
"""

from .report import as_json, table
from .results import BenchReport
from .scenario import QUICK, BenchSettings, run_bench

__all__ = ["QUICK", "BenchReport", "BenchSettings", "as_json", "run_bench", "table"]
