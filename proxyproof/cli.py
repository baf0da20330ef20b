"""The ``proxyproof`` command."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from importlib import resources

from proxyproof.check import UsageError, whole_number
from proxyproof.mocks import KIND_NAMES
from proxyproof.serving import ListenError, event_loop_name

EXAMPLES = resources.files("proxyproof.fixtures") / "examples"

DESCRIPTION = """\
proxyproof: a reference proxy, mock upstreams and a conformance harness for Kong's AI Proxy
(Advanced) in front of self-hosted Llama 2 (llama2_format raw, ollama and openai)."""

EPILOG = """\
examples:
  proxyproof check                          the conformance catalogue: bundled proxy + mocks
  proxyproof check --gateway kong --admin-url URL --proxy-url URL   check a real Kong
  proxyproof lint kong.yaml                 llama2 pitfalls in your config
  proxyproof mock all                       every mock upstream on its default port
  proxyproof proxy --example ollama         the reference proxy with a bundled example config
  proxyproof examples ollama > kong.yaml    start your own config from an example
  proxyproof soak --duration 60 --rate 50   normal, failing and hostile load: no 5xx, no leak
  proxyproof load --users 20 --run-time 30  the catalogue's traffic through Locust (or --master)
  proxyproof fuzz --max-examples 200       generated requests from oas.yaml: no 5xx, as documented
  proxyproof bench --quick                  proxy overhead as ratios against direct calls
"""


def _check(args: argparse.Namespace) -> int:
    from proxyproof.check import run_check

    return run_check(args)


def _lint(args: argparse.Namespace) -> int:
    from proxyproof.harness.lint import exit_status, findings_as_json, format_findings, lint_file

    findings = lint_file(args.file)
    print(findings_as_json(findings) if args.json else format_findings(findings))
    return exit_status(findings)


def _proxy(args: argparse.Namespace) -> int:
    from proxyproof.proxy_impl import ConfigError, describe, load_config, proxy_app
    from proxyproof.proxy_impl.admin import EMPTY, Loaded, proxy_and_admin_apps, read_source
    from proxyproof.serving import ConnectionLimits, connection_cap, serve_forever

    if not (args.config or args.example) and args.admin_port is None:
        args.proxy_parser.error("one of the arguments --config --example is required (or "
                                "--admin-port, to start with no config and POST one)")
    if args.workers > 1:
        from proxyproof.workers import supported

        if args.admin_port is not None:
            args.proxy_parser.error("--workers with --admin-port: a POSTed config would reach "
                                    "one worker only; use one worker with the Admin API")
        if supported() is not None:
            args.proxy_parser.error(f"--workers {args.workers}: {supported()}")
    source = args.config or (_example(args.example).read_text(encoding="utf-8")
                             if args.example else None)
    shown = args.config or f"example {args.example}"
    try:
        if args.admin_port is None:  # nothing can add a route later: none is an error
            loaded = Loaded(load_config(source))
        else:  # Kong DB-less: any config, or none, until one is POSTed
            loaded = EMPTY if source is None else read_source(source)
    except ConfigError as error:
        print(f"{shown}: invalid configuration", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{shown}: {error.strerror or error}", file=sys.stderr)
        return 2
    config = loaded.config
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    mode = "Kong-compatible" if args.kong_compat else "fixed (reference)"
    templates = "raw" if args.raw_url_templates else "encoded"
    if args.raw_url_templates:
        print("warning: --raw-url-templates: clients can choose the upstream of any route whose "
              "upstream_url holds a template", file=sys.stderr)
    print(f"proxyproof proxy, {mode} behaviour", flush=True)
    for line in describe(config) or ["no routes yet: POST a config to the Admin API"]:
        print(f"  {line}", flush=True)
    log = (lambda line: print(line, flush=True)) if args.log else None
    if args.admin_port is None:
        apps = [("proxy", lambda: proxy_app(config, kong_compat=args.kong_compat,
                                            url_templates=templates, log=log),
                 args.host, args.port)]
    else:
        proxy_factory, admin_factory = proxy_and_admin_apps(
            loaded, kong_compat=args.kong_compat, url_templates=templates, log=log)
        apps = [("proxy", proxy_factory, args.host, args.port),
                ("admin", admin_factory, args.admin_host, args.admin_port)]
    label = (lambda name: f"{name} ") if len(apps) > 1 else (lambda name: "")
    limits = ConnectionLimits(header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                              keepalive_timeout=args.keepalive_timeout,
                              max_connections=args.max_connections)
    if connection_cap(args.max_connections) < args.max_connections:
        print(f"warning: at most {connection_cap(args.max_connections)} connections, not "
              f"{args.max_connections}: the open-file limit (ulimit -n) leaves no room for more",
              file=sys.stderr)
    if args.workers > 1:
        from proxyproof.workers import serve_workers

        return serve_workers(
            apps, args.workers, limits=limits, grace=args.grace,
            announce=lambda name, url: print(f"listening on {url} with {args.workers} worker "
                                             "processes (Ctrl-C to stop)", flush=True))
    serve_forever(
        apps,
        announce=lambda name, url: print(f"{label(name)}listening on {url} (Ctrl-C to stop)",
                                         flush=True),
        limits=limits,
        grace=args.grace,
    )
    return 0


def _hostings():  # -> tuple[Hosting, ...]
    from proxyproof.harness.hostings import HOSTINGS

    return HOSTINGS


def _example_names() -> list[str]:
    return sorted(entry.name.removesuffix(".yaml") for entry in EXAMPLES.iterdir()
                  if entry.name.endswith(".yaml"))


def _example(name: str):  # -> Traversable
    return EXAMPLES / f"{name}.yaml"


def _examples(args: argparse.Namespace) -> int:
    if args.name is None:
        for name in _example_names():
            first = _example(name).read_text(encoding="utf-8").splitlines()[0]
            print(f"{name:16} {first.lstrip('# ')}")
        return 0
    sys.stdout.write(_example(args.name).read_text(encoding="utf-8"))
    return 0


def _mock(args: argparse.Namespace) -> int:
    from proxyproof.mock_files import prepare
    from proxyproof.mocks.app import serve_mocks

    if args.workers > 1:
        from proxyproof.workers import supported

        if args.record_from:
            raise UsageError("--record-from writes cassettes from one process: leave out "
                             "--workers (replaying with --replay works with any number)")
        if supported() is not None:
            raise UsageError(f"--workers {args.workers}: {supported()}")
    files = prepare(args)  # cassettes and scripts, checked before anything listens
    names = list(KIND_NAMES) if args.name == "all" else [args.name]
    host, port = args.host, args.port
    if args.name == "ollama":  # as `ollama serve` does, where --host/--port leave it open
        from proxyproof.mocks.ollama_host import from_environment

        configured = from_environment()
        if configured is not None:
            host = configured[0] if host is None else host
            port = configured[1] if port is None else port
    status = serve_mocks(
        names,
        workers=args.workers,
        host=host or "127.0.0.1",
        port=port,
        api_key=args.api_key,
        models=tuple(args.model or ("llama2",)),
        latency=args.latency,
        journal_entries=args.journal_entries,
        journal_body_bytes=args.journal_body_bytes,
        control_token=args.control_token,
        log=None if args.quiet else _print_line,
        **files,
    )
    return status or 0  # 1 when a worker process failed


def _print_line(line: str) -> None:
    print(line, flush=True)


def _soak(args: argparse.Namespace) -> int:
    from proxyproof.soak import run_soak_command

    return run_soak_command(args)


def _load(args: argparse.Namespace) -> int:
    from proxyproof.load import run_load_command

    return run_load_command(args)


def _fuzz(args: argparse.Namespace) -> int:
    from proxyproof.fuzz import run_fuzz_command

    return run_fuzz_command(args)


def _bench(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from proxyproof.gateways import bundled_app
    from proxyproof.harness.bench import QUICK, BenchSettings, as_json, run_bench, table
    from proxyproof.harness.bench.subjects import GatewaySpec, with_headers

    if args.memory:
        return _bench_memory(args)
    if args.in_process:
        return _bench_in_process(args)
    chosen = {name: getattr(args, name) for name in ("duration", "requests", "concurrency",
                                                      "samples", "load_generator", "rounds")}
    try:
        gateways = with_headers([GatewaySpec.parse(text) for text in args.gateway or ()],
                                args.gateway_header or ())
        settings = replace(QUICK if args.quick else BenchSettings(),
                           **{name: value for name, value in chosen.items() if value is not None},
                           hostings=tuple(args.hosting or ()), gateways=gateways)
    except ValueError as error:
        print(f"proxyproof bench: {error}", file=sys.stderr)
        return 2
    try:
        report = run_bench(bundled_app, settings, progress=lambda line: print(f"bench: {line}",
                                                                 file=sys.stderr, flush=True))
    except RuntimeError as error:  # a server or the load generator could not run
        print(f"proxyproof bench: {error}", file=sys.stderr)
        return 2
    print(as_json(report) if args.json else table(report))
    return 1 if report.errors else 0


def _bench_in_process(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from proxyproof.gateways import bundled_app
    from proxyproof.harness.bench import BenchSettings
    from proxyproof.harness.bench.inprocess import (
        QUICK,
        InProcessSettings,
        in_process_json,
        in_process_table,
        run,
    )

    settings = QUICK if args.quick else InProcessSettings()
    try:
        if args.samples is not None:
            settings = replace(settings, requests=args.samples)
    except ValueError as error:
        print(f"proxyproof bench: {error}", file=sys.stderr)
        return 2
    hostings = BenchSettings(hostings=tuple(args.hosting or ())).selected()
    report = run(bundled_app, hostings, settings, progress=lambda line: print(
        f"bench: {line}", file=sys.stderr, flush=True))
    print(in_process_json(report) if args.json else in_process_table(report))
    return 1 if report.errors else 0


def _bench_memory(args: argparse.Namespace) -> int:
    from proxyproof.gateways import bundled_app
    from proxyproof.harness.bench.memory import MemorySettings, memory_json, memory_table, run

    try:
        settings = MemorySettings(requests=args.memory_requests,
                                  stream_megabytes=args.stream_megabytes)
        report = run(bundled_app, settings, progress=lambda line: print(
            f"bench: {line}", file=sys.stderr, flush=True))
    except ValueError as error:
        print(f"proxyproof bench: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"proxyproof bench: {error}", file=sys.stderr)
        return 2
    print(memory_json(report) if args.json else memory_table(report))
    return 1 if report.errors else 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="proxyproof",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="run the conformance catalogue against a gateway (default: the bundled proxy)",
        description="Start the mock upstreams, load one gateway config that carries every "
        "selected case (or your own kong.yaml with --config), send each case's request "
        "through the gateway, and judge what the upstream received and what the client got "
        "against an independent oracle. A case passes, fails, is a named Kong deviation "
        "(Kong's known behaviour where it differs from the reference) or is n/a for the "
        "gateway. Exit status 0 when no case fails, 1 when one does, 2 for a usage or "
        "configuration error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CHECK_EPILOG,
    )
    from proxyproof.check import add_arguments

    add_arguments(check)
    check.set_defaults(run=_check)

    lint = commands.add_parser(
        "lint",
        help="report llama2 pitfalls in a Kong declarative config, each with its fix",
        description="Read a Kong declarative config and report the llama2 pitfalls it holds "
        "(raw format at llama.cpp's /completion, http:// upstreams without a port, body-param "
        "auth that Kong does not send, client-chosen upstream hosts, vault references, "
        "unknown plugins, duplicate names, what Kong would refuse), each with its field path "
        "and fix. Exit status 1 when it finds an error, 0 otherwise.",
    )
    lint.add_argument("file", metavar="FILE", help="the config to read, e.g. kong.yaml")
    lint.add_argument("--json", action="store_true", help="print the findings as JSON")
    lint.set_defaults(run=_lint)

    proxy = commands.add_parser(
        "proxy",
        help="run the reference proxy with a Kong declarative config",
        description="Serve the reference AI Proxy (Advanced) for the llama2 provider, configured "
        "with a Kong declarative config (_format_version 3.0) holding ai-proxy or "
        "ai-proxy-advanced plugins. Runs in the foreground until Ctrl-C.",
    )
    source = proxy.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE",
                        help="your Kong declarative config (YAML or JSON), e.g. kong.yaml")
    source.add_argument("--example", choices=_example_names(), metavar="NAME",
                        help="a bundled example config: " + ", ".join(_example_names())
                        + " (its upstream is the matching mock on its default port)")
    proxy.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    proxy.add_argument("--port", type=_port, default=8000,
                       help="port (default 8000, Kong's proxy port; 0 = any free port)")
    proxy.add_argument("--kong-compat", action="store_true",
                       help="reproduce Kong's quirks and bugs instead of the fixed behaviour")
    proxy.add_argument("--raw-url-templates", action="store_true",
                       help="as Kong does, let a template's raw value (a client's header, query "
                            "parameter or path capture) replace the whole upstream_url; unsafe: "
                            "a client then picks the upstream and gets the configured "
                            "credentials sent there (default: each value is encoded where it "
                            "lands; docs/security.md)")
    proxy.add_argument("--admin-port", type=_port, default=None, metavar="PORT",
                       help="also serve Kong's Admin API, DB-less (GET /, GET /status, POST "
                       "/config), on PORT (Kong's is 8001; 0 = any free port); with it, "
                       "--config and --example may be left out to start with no routes")
    proxy.add_argument("--admin-host", default="127.0.0.1",
                       help="address for the Admin API (default 127.0.0.1)")
    proxy.add_argument("--log", action="store_true",
                       help="print one JSON line per request to stdout: status, latency, Kong's "
                       "ai.proxy analytics when a target logs statistics and, for "
                       "ai-proxy-advanced, the target that answered and every attempt "
                       "(docs/balancer.md#the-log-line); credentials are never printed")
    proxy.add_argument("--workers", type=whole_number(1), default=1, metavar="N",
                       help="serve from N processes on the same port (SO_REUSEPORT: the kernel "
                       "spreads connections over them), one core each; SIGTERM or Ctrl-C "
                       "drains them all (default 1; Linux; not with --admin-port)")
    _add_connection_arguments(proxy)
    proxy.set_defaults(run=_proxy, proxy_parser=proxy)

    from proxyproof import mock_files

    mock = commands.add_parser(
        "mock",
        help="run mock upstream servers",
        description="Serve protocol-faithful mock upstreams in the foreground until Ctrl-C: "
        "ollama (default port 11434), huggingface (Inference API + TGI, 8081), llamacpp (8080) "
        "and openai (8082). Each logs one line per request and has a control API under "
        "/__mock__/ (journal, scripted responses, faults). A mock can also record a real "
        "server's exchanges and replay them offline.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=mock_files.EPILOG,
    )
    mock.add_argument("name", choices=(*KIND_NAMES, "all"), help="which mock to run, or all")
    mock.add_argument("--host", default=None,
                      help="address to bind (default 127.0.0.1; the ollama mock alone reads "
                      "OLLAMA_HOST, e.g. 127.0.0.1:11500, as Ollama does)")
    mock.add_argument("--port", type=_port, default=None,
                      help="port (default: the real server's usual port); with 'all', "
                      "mocks take PORT, PORT+1, ...")
    mock.add_argument("--api-key", default=None,
                      help="require this API key (Authorization: Bearer KEY)")
    mock.add_argument("--model", action="append", metavar="NAME",
                      help="a model the server has (repeatable; default llama2)")
    mock.add_argument("--latency", type=_seconds, default=0.0, metavar="SECONDS",
                      help="wait this long before answering each generation request")
    mock.add_argument("--journal-entries", type=whole_number(1), default=1000, metavar="N",
                      help="requests the journal keeps (default 1000); older ones are dropped "
                      "and counted")
    mock.add_argument("--journal-body-bytes", type=whole_number(0), default=1024 * 1024,
                      metavar="B", help="bytes of each request body the journal keeps (default "
                      "1 MiB); a longer body is kept truncated and flagged")
    mock.add_argument("--control-token", default=None, metavar="TOKEN",
                      help="require 'Authorization: Bearer TOKEN' on every /__mock__/ route "
                      "(default: $PROXYPROOF_CONTROL_TOKEN; the emulated API is unaffected)")
    mock.add_argument("--quiet", action="store_true",
                      help="no line per request (under load, printing them costs the mock)")
    mock.add_argument("--workers", type=whole_number(1), default=1, metavar="N",
                      help="serve each mock from N processes on its one port (SO_REUSEPORT), "
                      "one core each: scripts, faults and models are shared, so the control "
                      "API applies to every worker; each keeps its own journal of "
                      "--journal-entries, listed merged with a 'worker' field per entry "
                      "(default 1; Linux; not with --record-from; docs/load.md)")
    mock_files.add_arguments(mock)
    mock.set_defaults(run=_mock)

    examples = commands.add_parser(
        "examples",
        help="list the bundled example configs, or print one",
        description="The example Kong declarative configs bundled with proxyproof, one per "
        "hosting, each pointing at the matching mock on its default port. Without NAME, list "
        "them; with NAME, print that config (e.g. `proxyproof examples ollama > kong.yaml`).",
    )
    examples.add_argument("name", nargs="?", choices=_example_names(), help="the example to print")
    examples.set_defaults(run=_examples)

    soak = commands.add_parser(
        "soak",
        help="send a steady mix of normal, streaming, failing and hostile requests through a "
        "gateway; count outcomes, unexpected 5xx and leaks",
        description="Start the mock upstreams, load the catalogue's config into the gateway "
        "and send, at a steady rate, requests from the catalogue (normal, streaming, failing) "
        "and hostile ones (malformed JSON, deep nesting, huge numbers, lone surrogates, "
        "compression bombs, unknown encodings). Report the outcomes by kind, every 5xx no "
        "case expects, and the gateway's resident memory, open descriptors and event-loop "
        "tasks after warm-up and at the end (for the bundled proxy, LiteLLM, or --pid). Exit "
        "status 0 when no 5xx was unexpected and every well-formed request was answered, 1 "
        "otherwise, 2 for a usage or configuration error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  proxyproof soak --duration 30 --rate 50\n"
        "  proxyproof soak --kong-compat --json > soak.json\n"
        "  proxyproof soak --gateway kong --admin-url http://127.0.0.1:8001 \\\n"
        "                  --proxy-url http://127.0.0.1:8000 --pid $(pgrep -o nginx)\n",
    )
    from proxyproof.soak import add_arguments as add_soak_arguments

    add_soak_arguments(soak)
    soak.set_defaults(run=_soak)

    load = commands.add_parser(
        "load",
        help="load a gateway with the catalogue's traffic through Locust, on one machine or "
        "many; count outcomes, time streams, sample replies for the oracle",
        description="Start the mock upstreams, load the catalogue's config into the gateway, "
        "send each catalogue request alone once (one that fails alone is left out), then let "
        "Locust's users send them concurrently in the --mix's proportions: chat and "
        "completions, streaming or not, per hosting, with a share of failing and hostile "
        "requests. Reports per kind throughput and latency percentiles, time to first token "
        "and per-chunk gaps of streams, outcomes (ok, expected_error, unexpected_5xx, "
        "stream_cut) and --sample replies judged by the oracle while the load runs; Locust's "
        "HTML and CSV, and proxyproof's JSON summary. Headless unless --web-ui; --master and "
        "--worker spread the users over processes and machines as Locust does. Exit status 0, "
        "1 when unexpected 5xx, cut replies or failed samples pass --fail-ratio, 2 for a usage "
        "or configuration error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples (docs/load.md):\n"
        "  proxyproof load --users 20 --run-time 30 --json load.json --html load.html\n"
        "  proxyproof load --master --expect-workers 2 --users 40 --run-time 60 --json -\n"
        "  proxyproof load --worker --master-host 127.0.0.1        (twice, other terminals)\n"
        "  proxyproof load --gateway kong --admin-url http://127.0.0.1:8001 \\\n"
        "                  --proxy-url http://127.0.0.1:8000 --mock-workers 2 --run-time 60\n",
    )
    from proxyproof.load import add_arguments as add_load_arguments

    add_load_arguments(load)
    load.set_defaults(run=_load)

    from proxyproof.fuzz import add_arguments as add_fuzz_arguments
    from proxyproof.fuzz import describe as describe_fuzz

    fuzz = commands.add_parser("fuzz", formatter_class=argparse.RawDescriptionHelpFormatter,
                               **describe_fuzz())
    add_fuzz_arguments(fuzz)
    fuzz.set_defaults(run=_fuzz)

    bench = commands.add_parser(
        "bench",
        help="measure speed as ratios against a direct call (mock throughput, proxy overhead)",
        description=textwrap.fill(
        "Measure speed on this machine, as ratios against a direct call: (1) how many small "
        "chat requests per second one mock process answers on one core; (2) per "
        "hosting (examples/*.yaml), the seed chat request through the bundled proxy against the "
        "request the proxy sends upstream, sent to the mock directly: throughput and p99 under "
        "load, latency p50/p99 one request at a time and CPU per request, as proxied / direct "
        "and proxied - direct; (3) streaming (Ollama NDJSON, OpenAI-style SSE): time to the "
        "first token, the gap between chunks (p99) and the time to the end of the stream; (4) "
        "the same for other gateways (--gateway). Then the speed targets, met or not. The load "
        "generator (wrk when installed) runs on one CPU, one process per server on the others; "
        "every run is bounded by a time limit and only talks to 127.0.0.1. A default run takes "
        "about a minute; --quick a few seconds; --memory measures resident memory instead, "
        "--in-process the proxy's cost per request with everything in one process. "
        "Exit status 0, or 1 when requests failed.", width=88),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  proxyproof bench                          the table of the README, on this machine\n"
        "  proxyproof bench --gateway litellm        ... with a LiteLLM proxy beside it\n"
        "  proxyproof bench --gateway floor          ... with a bare proxy: the floor\n"
        "  proxyproof bench --hosting ollama --gateway portkey=http://127.0.0.1:8787/v1/chat/"
        "completions\n"
        "  proxyproof bench --memory --json          RSS over 100,000 requests and a 50 MB "
        "stream\n"
        "  proxyproof bench --in-process             the proxy's and the floor's cost per request, "
        "steadily\n",
    )
    bench.add_argument("--quick", action="store_true",
                       help="a few-second smoke run (small runs: the figures are rough)")
    bench.add_argument("--duration", type=float, metavar="SECONDS",
                       help="time limit of each throughput run; latency and streaming runs get "
                       "half of it (default 3)")
    bench.add_argument("--requests", type=int, metavar="N",
                       help="request limit of each throughput run (default 50000)")
    bench.add_argument("--concurrency", type=int, metavar="N",
                       help="kept-alive connections of a throughput run (default 32)")
    bench.add_argument("--samples", type=int, metavar="N",
                       help="requests of each latency or streaming run, sent one at a time "
                       "(default 2000)")
    bench.add_argument("--rounds", type=int, metavar="N",
                       help="measure each comparison N times, direct and proxied back to back, "
                       "and keep the round with the median ratio (throughput; first token for "
                       "streams): steadier figures on a noisy machine, N times as long; the "
                       "targets show each figure's range over the rounds (default 1)")
    bench.add_argument("--load-generator", choices=("auto", "wrk", "python"), default=None,
                       help="what sends the non-streaming load: wrk (a C load generator, far "
                       "cheaper per request than any server here), python (the built-in "
                       "client), or auto: wrk when installed (default auto; python with --quick, "
                       "as a wrk run lasts a second at least); streams are always timed by the "
                       "built-in client")
    bench.add_argument("--hosting", action="append", metavar="NAME",
                       choices=[hosting.key for hosting in _hostings()],
                       help="measure only this hosting (repeatable; default all: "
                       + ", ".join(hosting.key for hosting in _hostings()) + ")")
    bench.add_argument("--gateway", action="append", metavar="NAME=URL",
                       help="also measure another gateway in the same run (repeatable): "
                       "'floor' starts the benchmark's own bare pass-through proxy (asyncio and "
                       "httptools, no checks) per hosting, sending what the bundled proxy sent: "
                       "the least a proxy in Python costs here; 'litellm' starts a LiteLLM "
                       "proxy per hosting it can serve (Ollama, self-hosted GGUF; needs "
                       "litellm[proxy]); NAME=URL measures one already "
                       "running, URL its OpenAI-style chat endpoint on 127.0.0.1, sending to "
                       "the benchmark's mocks on their usual ports (Ollama 11434, OpenAI-style "
                       "8082)")
    bench.add_argument("--gateway-header", action="append", metavar="NAME=HEADER: VALUE",
                       help="send this header to the running gateway NAME with every request "
                       "(repeatable), e.g. its key: 'mine=Authorization: Bearer sk-...'; values "
                       "never appear in the report")
    bench.add_argument("--memory", action="store_true",
                       help="instead: the proxy's resident memory over --memory-requests "
                       "requests and while it relays one --stream-megabytes stream")
    bench.add_argument("--memory-requests", type=int, metavar="N", default=100_000,
                       help="requests of the --memory run (default 100000)")
    bench.add_argument("--stream-megabytes", type=int, metavar="MB", default=50,
                       help="size of the stream the --memory run relays (default 50)")
    bench.add_argument("--in-process", action="store_true",
                       help="instead: the bundled proxy's cost per request beside the floor's, "
                       "in µs and as a ratio that moves by a few per cent from run to run where "
                       "the other figures move by a fifth or more: each hosting's seed "
                       "request through the proxy and straight to its upstream (a canned one "
                       "replaying the mock's reply), one at a time, everything in this one "
                       "process on one CPU; the fastest of 5 batches of --samples requests a "
                       "side (default 2000; --quick: 3 of 200), the sides in turn request by "
                       "request; for Ollama and self-hosted GGUF, also the time to a streamed "
                       "request's first token")
    bench.add_argument("--json", action="store_true", help="print a JSON report instead of tables")
    bench.set_defaults(run=_bench)
    return root


CHECK_EPILOG = """\
examples:
  proxyproof check                                   the catalogue against the bundled proxy
  proxyproof check --kong-compat                     ... run in Kong's mode: deviations named
  proxyproof check --profile core,streaming -k ollama
  proxyproof check --config kong.yaml                your routes, options and auth
  proxyproof check --gateway kong --admin-url http://127.0.0.1:8001 \\
                   --proxy-url http://127.0.0.1:8000 --junit report.xml
  proxyproof check --gateway litellm                 a LiteLLM proxy (pip install litellm)
  proxyproof check --list --json -                   the catalogue as JSON
"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0 to 65535; 0 = any free)")
    return port


def _add_connection_arguments(command: argparse.ArgumentParser) -> None:
    """What one client connection may take, and the drain on SIGTERM (docs/security.md)."""
    from proxyproof.serving import DEFAULT_GRACE, DEFAULT_LIMITS

    limits = DEFAULT_LIMITS
    group = command.add_argument_group("client connections")
    group.add_argument("--header-timeout", type=_positive_seconds, metavar="SECONDS",
                       default=limits.header_timeout,
                       help="a request's headers must arrive within this, counted from the "
                       "connection's opening or the request's first byte (default "
                       f"{limits.header_timeout:g}); a late request gets 408")
    group.add_argument("--body-timeout", type=_positive_seconds, metavar="SECONDS",
                       default=limits.body_timeout,
                       help="a request body must arrive whole within this after its headers "
                       f"(default {limits.body_timeout:g}); a late one gets 408")
    group.add_argument("--keepalive-timeout", type=_positive_seconds, metavar="SECONDS",
                       default=limits.keepalive_timeout,
                       help="close a connection idle this long between requests (default "
                       f"{limits.keepalive_timeout:g})")
    group.add_argument("--max-connections", type=whole_number(1), metavar="N",
                       default=limits.max_connections,
                       help="client connections open at once; more get 503 (default "
                       f"{limits.max_connections}, lowered to fit ulimit -n)")
    group.add_argument("--grace", type=_seconds, metavar="SECONDS", default=DEFAULT_GRACE,
                       help="on SIGTERM or Ctrl-C, stop accepting and let requests in flight "
                       f"finish for this long before ending them (default {DEFAULT_GRACE:g})")


def _positive_seconds(text: str) -> float:
    seconds = _seconds(text)
    if seconds == 0:
        raise argparse.ArgumentTypeError(f"{text} seconds: must be more than 0")
    return seconds


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} seconds: must be 0 or more")
    return seconds


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        event_loop_name()  # a bad PROXYPROOF_LOOP is one line here, not a traceback in a server
    except ValueError as error:
        print(f"proxyproof {args.command}: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(args.run(args))
    except (ListenError, UsageError) as error:
        print(f"proxyproof {args.command}: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # the reader left (`proxyproof examples | head`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        sys.exit(141)


if __name__ == "__main__":
    main()
