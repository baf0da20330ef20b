"""``proxyproof load``: the catalogue's traffic through a gateway, driven by Locust.

This process never imports Locust (whose import monkey-patches the standard library for gevent):
it starts the mocks, loads the gateway, sends each catalogue case alone once, writes the plan,
and runs ``proxyproof.harness.load.locust_run`` as a process of its own, standalone or as
Locust's master; ``--worker`` only starts that process, which gets the plan from the master.

Exit status: 0 when unexpected 5xx, cut replies and failed samples stay within ``--fail-ratio``,
1 otherwise, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from proxyproof.check import (
    UsageError,
    add_gateway_arguments,
    gateway_from,
    positive_number,
    share,
    user_config_from,
    whole_number,
)

LOCUST_MODULE = "proxyproof.harness.load.locust_run"
MASTER_PORT = 5557  # Locust's
WEB_PORT = 8089  # Locust's
JOURNAL_ENTRIES = 20_000  # per mock (per worker): samples are looked up while the load runs
JOURNAL_BODY_BYTES = 64 * 1024


def run_load_command(args: argparse.Namespace) -> int:
    _check_options(args)
    if args.worker:  # this process becomes Locust's worker: nothing to prepare or report
        job = {"mode": "worker", "master": [args.master_host, args.master_port],
               "proxy_url": args.proxy_url}
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", LOCUST_MODULE, json.dumps(job)])
    with tempfile.TemporaryDirectory(prefix="proxyproof-load-") as scratch:
        job = {"result": str(Path(scratch) / "result.json"), "proxy_url": None}
        job.update(mode="master" if args.master else "standalone", users=args.users,
                   spawn_rate=args.spawn_rate, run_time=args.run_time, csv=args.csv,
                   html=args.html, master_bind=[args.master_bind_host, args.master_bind_port],
                   expect_workers=args.expect_workers,
                   expect_workers_wait=args.expect_workers_wait,
                   web_ui=[args.web_host, args.web_port] if args.web_ui else None)
        # Locust's process starts now, importing while the gateway is prepared, and reads the
        # plan from its standard input (nothing there: it exits).
        signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM as Ctrl-C: everything cleaned up
        locust = _start_locust(job, scratch)
        try:
            with _prepared_plan(args) as plan:
                assert locust.stdin is not None
                locust.stdin.write(json.dumps({**plan, "sample": args.sample}).encode())
                locust.stdin.close()
                _wait_for_locust(locust, job)
        finally:
            if locust.poll() is None and locust.stdin is not None and not locust.stdin.closed:
                locust.stdin.close()  # preparing failed: no plan, so it ends
                locust.wait()
        return _report(json.loads(Path(job["result"]).read_text(encoding="utf-8")), args)


def _check_options(args: argparse.Namespace) -> None:
    if importlib.util.find_spec("locust") is None:
        raise UsageError("proxyproof load drives Locust, which is not installed: "
                         "pip install 'proxyproof[load]'")
    if args.master and args.worker:
        raise UsageError("--master and --worker: a process is one or the other")
    if args.worker and not args.master_host:
        raise UsageError("--worker needs --master-host (where proxyproof load --master runs)")
    if args.master_host and not args.worker:
        raise UsageError("--master-host is for --worker; the master binds --master-bind-host")
    if args.expect_workers is not None and not args.master:
        raise UsageError("--expect-workers is for --master")
    if args.master and args.expect_workers is None:
        args.expect_workers = 1
    if args.worker:
        given = [name for name in ("mix", "json", "html", "csv") if getattr(args, name)]
        if given:
            raise UsageError(f"--{given[0]} is the master's: a worker gets the plan from it "
                             "and the master writes the reports")
    elif args.run_time is None:
        raise UsageError("--run-time SECONDS is needed (how long to send)")


@contextlib.contextmanager
def _prepared_plan(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Mocks running, the gateway loaded with the catalogue's config, each case sent alone:
    the plan, for as long as the run lasts."""
    from proxyproof.harness.adapters import GatewayError
    from proxyproof.harness.catalogue import load_catalogue
    from proxyproof.harness.load.mix import Mix, MixError, load_mix
    from proxyproof.harness.load.plan import build_plan, load_cases
    from proxyproof.harness.runner import MockPlacement, prepared
    from proxyproof.harness.user_routes import UserConfigError

    try:
        mix = load_mix(args.mix) if args.mix else Mix()
    except MixError as error:
        raise UsageError(str(error)) from None
    cases = load_cases(load_catalogue(), mix)
    user_config = user_config_from(args)
    if args.proxy_workers and args.gateway != "bundled":
        raise UsageError("--proxy-workers runs the bundled proxy: use it with --gateway bundled")
    gateway = (BundledProcesses(args.proxy_workers, args.kong_compat) if args.proxy_workers
               else gateway_from(args))
    starter = functools.partial(_mock, workers=args.mock_workers)
    placement = MockPlacement(args.mock_bind, args.mock_host, starter)
    try:
        with prepared(gateway, cases, user_config, placement) as ready:
            _say(f"sending each of {len(ready.bindings)} catalogue requests through "
                 f"{gateway.name} alone first…")
            results = {binding.id: ready.result(binding) for binding in ready.bindings}
            try:
                plan = build_plan(ready, results, mix, adapts=hasattr(gateway, "adapt"))
            except MixError as error:
                raise UsageError(str(error)) from None
            if plan.left_out:
                _say(f"left out {len(plan.left_out)} that fail when sent alone (proxyproof "
                     f"check shows why): {', '.join(plan.left_out[:5])}"
                     + (" …" if len(plan.left_out) > 5 else ""))
            if not plan.kinds:
                raise UsageError("no catalogue request passes through this gateway alone: "
                                 "run proxyproof check first")
            yield plan.as_json()
    except UserConfigError as error:
        raise UsageError(f"{args.config}: {error}") from None
    except GatewayError as error:
        raise UsageError(str(error)) from None


def _mock(kind: str, *, workers: int, **options: Any) -> Any:
    """A mock for the load: in this process (``workers`` 0), or ``proxyproof mock --workers N``
    in processes of its own; either way with a journal long enough to find samples in."""
    if not workers:
        from proxyproof.mocks import run_mock

        return run_mock(kind, journal_entries=JOURNAL_ENTRIES,
                        journal_body_bytes=JOURNAL_BODY_BYTES, **options)
    return _mock_processes(kind, workers, options["models"], options.get("host", "127.0.0.1"))


@contextlib.contextmanager
def _mock_processes(kind: str, workers: int, models: Any, host: str) -> Iterator[Any]:
    from proxyproof.mocks import MockControl

    command = [sys.executable, "-m", "proxyproof", "mock", kind, "--workers", str(workers),
               "--port", "0", "--host", host, "--quiet",
               "--journal-entries", str(JOURNAL_ENTRIES),
               "--journal-body-bytes", str(JOURNAL_BODY_BYTES)]
    for model in models:
        command += ["--model", model]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        line = _first_line(server, f"{kind}: ", f"mock {kind}")  # once every worker listens
        url = line.split(": ", 1)[1].strip()
        yield _Started(url, MockControl(url))
    finally:
        _stop(server)


class _Started:
    def __init__(self, url: str, control: Any) -> None:
        self.url, self.control = url, control


def _first_line(server: subprocess.Popen[str], prefix: str, what: str) -> str:
    """The first line of ``server``'s output starting with ``prefix`` (then its output is
    drained in the background, so the pipes never fill up)."""
    assert server.stdout is not None and server.stderr is not None
    for line in server.stdout:
        if line.startswith(prefix):
            for stream in (server.stdout, server.stderr):
                threading.Thread(target=stream.read, daemon=True).start()
            return line
    raise UsageError(f"{what} did not start: {server.stderr.read().strip()}")


def _stop(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


class BundledProcesses:
    """The bundled proxy as ``proxyproof proxy --workers N`` (``--proxy-workers N``): N
    processes on one port, each on a core of its own, serving the catalogue's config."""

    def __init__(self, workers: int, kong_compat: bool) -> None:
        mode = "Kong-compatible" if kong_compat else "reference"
        self.name = f"proxyproof bundled proxy ({mode}, {workers} processes)"
        self.workers, self.kong_compat = workers, kong_compat
        self._server: subprocess.Popen[str] | None = None
        self._directory = tempfile.TemporaryDirectory(prefix="proxyproof-proxy-")

    def load(self, config: dict[str, Any]) -> str:
        import yaml

        self.close()
        path = Path(self._directory.name) / "kong.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        command = [sys.executable, "-m", "proxyproof", "proxy", "--config", str(path),
                   "--port", "0", "--workers", str(self.workers)]
        if self.kong_compat:
            command.append("--kong-compat")
        self._server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        line = _first_line(self._server, "listening on ", "the bundled proxy")
        return line.split()[2]

    def close(self) -> None:
        if self._server is not None:
            _stop(self._server)
            self._server = None


def _start_locust(job: dict[str, Any], scratch: str) -> subprocess.Popen[bytes]:
    job_path = Path(scratch) / "job.json"
    job_path.write_text(json.dumps({**job, "plan": "-"}), encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", LOCUST_MODULE, str(job_path)],
                            stdin=subprocess.PIPE)


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _wait_for_locust(process: subprocess.Popen[bytes], job: dict[str, Any]) -> None:
    """Until Locust's process ends. Ctrl-C reaches it too (the same process group) and a
    SIGTERM is passed on: either way it stops early and still writes its result."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signal, _frame: process.send_signal(signal.SIGTERM))
    try:
        status = process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, _interrupt)
    if status:
        raise UsageError(f"Locust's process exited with status {status}")
    result = json.loads(Path(job["result"]).read_text(encoding="utf-8"))
    if "error" in result:
        raise UsageError(result["error"])


def _report(result: dict[str, Any], args: argparse.Namespace) -> int:
    from proxyproof.harness.load.summary import verdict

    report = result["summary"]
    if args.json:
        text = json.dumps(report, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            try:
                Path(args.json).write_text(text, encoding="utf-8")
            except OSError as error:
                raise UsageError(f"cannot write {args.json}: {error.strerror or error}") from None
    out = sys.stderr if args.json == "-" else sys.stdout
    print(_as_text(result), file=out)
    reasons = verdict(report, args.fail_ratio)
    for reason in reasons:
        print(f"FAILED: {reason}", file=out)
    return 1 if reasons else 0


def _as_text(result: dict[str, Any]) -> str:
    report = result["summary"]
    lines = [f"{report['requests']} requests in {result['seconds']:.1f} s from "
             f"{report['workers']} load process(es)"]
    lines.append(f"  {'kind':28} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                 f"{'TTFT p50':>9} {'gap p99':>8}")
    for kind, figures in report["by_kind"].items():
        ttft = figures["ttft_p50_ms"]
        gap = result["chunk_gaps"].get(kind, {}).get("p99_ms")
        lines.append(f"  {kind:28} {figures['requests']:>9} {figures['rps']:>9.1f} "
                     f"{figures['p50_ms']:>8g} {figures['p99_ms']:>8g} "
                     f"{'-' if ttft is None else f'{ttft:g}':>9} "
                     f"{'-' if gap is None else f'{gap:g}':>8}")
    lines.append("outcomes: " + ", ".join(f"{name} {count}"
                                          for name, count in report["outcomes"].items()))
    lines.append(f"samples judged by the oracle: {report['samples_checked']}, failed "
                 f"{report['samples_failed']}" + (f", skipped {result['samples_skipped']}"
                                                  if result["samples_skipped"] else ""))
    lines += [f"  {failure}" for failure in result["sample_failures"]]
    return "\n".join(lines)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_arguments(load: argparse.ArgumentParser) -> None:
    add_gateway_arguments(load)
    shape = load.add_argument_group("the load")
    shape.add_argument("--users", type=whole_number(1), default=10, metavar="N",
                       help="concurrent users, each sending one request after another with no "
                       "pause (default 10; with --master, spread over the workers)")
    shape.add_argument("--spawn-rate", type=positive_number, default=10.0, metavar="R",
                       help="users started per second (default 10)")
    shape.add_argument("--run-time", type=positive_number, metavar="SECONDS",
                       help="how long to send, counted from the first user's start (needed, "
                       "except on a --worker)")
    shape.add_argument("--mix", metavar="FILE", help="the mix: weights of routes and hostings, "
                       "shares of streaming, failing and hostile requests (YAML or JSON; "
                       "docs/load.md); default: chat 3 : completions 1, every hosting alike, "
                       "30%% streaming, 5%% failing, 5%% hostile")
    shape.add_argument("--sample", type=share, default=0.05, metavar="F",
                       help="the share of well-formed replies the oracle judges while the load "
                       "runs, each found in the mock's journal by a marker in its prompt "
                       "(default 0.05; 0 turns it off)")
    shape.add_argument("--fail-ratio", type=share, default=0.0, metavar="RATIO",
                       help="exit 1 when unexpected 5xx and cut replies are more than RATIO of "
                       "the requests, or failed samples more than RATIO of those judged "
                       "(default 0: any one fails the run)")
    shape.add_argument("--proxy-workers", type=whole_number(0), default=0, metavar="N",
                       help="--gateway bundled: serve the proxy from N processes of its own "
                       "(proxyproof proxy --workers N) instead of a thread of this process "
                       "(default 0)")
    shape.add_argument("--mock-workers", type=whole_number(0), default=0, metavar="N",
                       help="serve each mock from N processes of its own (proxyproof mock "
                       "--workers N), so the upstream is not the bottleneck (default 0: in "
                       "this process, as check does)")
    reports = load.add_argument_group("reports (written by the standalone run or the master)")
    reports.add_argument("--json", metavar="FILE", help="proxyproof's JSON summary ('-': "
                         "standard output)")
    reports.add_argument("--html", metavar="FILE", help="Locust's HTML report")
    reports.add_argument("--csv", metavar="PREFIX", help="Locust's CSV files: "
                         "PREFIX_stats.csv, PREFIX_failures.csv, PREFIX_exceptions.csv")
    reports.add_argument("--web-ui", action="store_true",
                         help="also serve Locust's web UI while the run lasts (the run starts "
                         "at once, headless is the default)")
    reports.add_argument("--web-host", default="127.0.0.1", metavar="ADDR",
                         help="the web UI's address (default 127.0.0.1)")
    reports.add_argument("--web-port", type=whole_number(1), default=WEB_PORT, metavar="PORT",
                         help=f"the web UI's port (default {WEB_PORT})")
    spread = load.add_argument_group("over several processes or machines (Locust's names)")
    spread.add_argument("--master", action="store_true",
                        help="prepare the gateway and mocks, wait for --expect-workers workers, "
                        "share the users among them and report for all")
    spread.add_argument("--expect-workers", type=whole_number(1), metavar="K",
                        help="with --master: workers to wait for before starting (default 1)")
    spread.add_argument("--expect-workers-wait", type=positive_number, default=120.0,
                        metavar="SECONDS", help="with --master: give up when they have not "
                        "all connected after this long (default 120)")
    spread.add_argument("--master-bind-host", default="*", metavar="ADDR",
                        help="with --master: the address workers connect to (default *: all)")
    spread.add_argument("--master-bind-port", type=whole_number(1), default=MASTER_PORT,
                        metavar="P", help=f"with --master: its port (default {MASTER_PORT})")
    spread.add_argument("--worker", action="store_true",
                        help="send load for the master at --master-host; the gateway and mix "
                        "come from the master (--proxy-url, if given, is where this machine "
                        "reaches the gateway)")
    spread.add_argument("--master-host", metavar="H", help="with --worker: the master's host")
    spread.add_argument("--master-port", type=whole_number(1), default=MASTER_PORT,
                        metavar="P", help=f"with --worker: the master's port (default "
                        f"{MASTER_PORT})")
