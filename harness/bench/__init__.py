"""``proxyproof bench``: speed measured as ratios against a direct call, never as timed asserts.

Layout: a load generator process pinned to one CPU, and a process per server (each mock kind,
each hosting's proxy, another gateway: ``subjects``) on the other CPU(s) (``layout``). The load
generator must cost less per request than the servers it measures: it drives ``wrk`` where
installed (``wrk``), else speaks a minimal HTTP/1.1 of its own (``http1``, which also times
streams); it runs ``load.Run``s sent over a pipe (``servers.LoadGenerator``). ``scenario``
decides what to measure, ``results`` holds the figures and their ratios, ``targets`` judges
them, ``report`` prints them with ``machine``'s description; ``memory`` is ``--memory``.
"""

from .report import as_json, table
from .results import BenchReport
from .scenario import QUICK, BenchSettings, run_bench

__all__ = ["QUICK", "BenchReport", "BenchSettings", "as_json", "run_bench", "table"]
