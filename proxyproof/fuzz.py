"""``proxyproof fuzz``: schemathesis against a gateway from fixtures/oas.yaml (docs/fuzz.md).

Exit status: 0 when no example failed (documented Kong departures and upstream errors do not
fail), 1 when one did, 2 for a usage or configuration error."""

from __future__ import annotations

import argparse
import json
import random
import sys
import textwrap
from contextlib import contextmanager
from typing import Any

from proxyproof.check import UsageError, add_gateway_arguments, gateway_from, whole_number

MODES = {"positive": ("positive",), "negative": ("negative",), "all": ("positive", "negative")}


@contextmanager
def _target(args: argparse.Namespace, hostings: list[str] | None):
    from proxyproof.harness.fuzz import loaded, running_target
    from proxyproof.harness.runner import MockPlacement

    if args.gateway_url:
        yield running_target(args.gateway_url, args.provider or ["llama2"]), args.gateway_url
        return
    gateway = gateway_from(args)
    with loaded(gateway, hostings, MockPlacement(args.mock_bind, args.mock_host)) as target:
        yield target, gateway.name


def _check_usage(args: argparse.Namespace) -> list[str] | None:
    """The hostings to route (None: all); a UsageError for flags that do not go together."""
    from proxyproof.harness.hostings import BY_KEY

    if args.config:
        raise UsageError("--config does not apply: fuzz loads its own routes at the document's "
                         "paths (/<hosting>/chat, /<hosting>/completions)")
    if args.gateway == "litellm":
        raise UsageError("--gateway litellm does not serve the document's paths; fuzz bundled, "
                         "kong or manual gateways, or a running one with --gateway-url")
    if args.gateway_url:
        clashing = [flag for flag, given in (
            ("--gateway", args.gateway != "bundled"), ("--kong-compat", args.kong_compat),
            ("--proxy-url", args.proxy_url), ("--hosting", args.hosting)) if given]
        if clashing:
            raise UsageError(f"--gateway-url fuzzes a gateway as it is: drop {', '.join(clashing)}")
        if not args.gateway_url.startswith(("http://", "https://")):
            raise UsageError(f"--gateway-url {args.gateway_url}: not an http(s) URL")
    elif args.provider:
        raise UsageError("--provider names a running gateway's route segments: use it with "
                         "--gateway-url")
    if not args.hosting:
        return None
    hostings = [h.strip() for h in args.hosting.split(",") if h.strip()]
    unknown = [h for h in hostings if h not in BY_KEY]
    if unknown or not hostings:
        raise UsageError(f"--hosting: unknown {', '.join(unknown) or 'empty list'}; choose from "
                         f"{', '.join(BY_KEY)}")
    return hostings


def run_fuzz_command(args: argparse.Namespace) -> int:
    from proxyproof.harness.adapters import GatewayError
    from proxyproof.harness.fuzz import FuzzError, as_text, run_fuzz

    hostings = _check_usage(args)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    to_stdout = args.json == "-"
    kong = args.kong_compat or args.gateway == "kong"
    try:
        with _target(args, hostings) as (target, name):
            print(f"fuzzing {name} at {target.url} (seed {seed})…", file=sys.stderr, flush=True)
            report = run_fuzz(target, gateway=name, max_examples=args.max_examples, seed=seed,
                              modes=MODES[args.mode], kong=kong,
                              progress=lambda what: print(f"  {what}", file=sys.stderr,
                                                          flush=True))
    except (GatewayError, FuzzError) as error:
        raise UsageError(str(error)) from None
    print(as_text(report), file=sys.stderr if to_stdout else sys.stdout)
    if args.json:
        _write(args.json, json.dumps(report.as_dict(), indent=2) + "\n")
    return 0 if report.ok else 1


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def add_arguments(fuzz: argparse.ArgumentParser) -> None:
    run = fuzz.add_argument_group("the fuzzing")
    run.add_argument("--max-examples", type=whole_number(1), default=50, metavar="N",
                     help="generated requests per operation and generation mode (default 50)")
    run.add_argument("--mode", choices=tuple(MODES), default="all",
                     help="positive: requests the document calls valid; negative: invalid ones; "
                     "all: both (default)")
    run.add_argument("--seed", type=int, default=None,
                     help="hypothesis's seed, to repeat a run (default: random, printed)")
    run.add_argument("--hosting", metavar="H,...", help="route only these hostings (default "
                     "all: huggingface, ollama, llamacpp, gguf)")
    run.add_argument("--json", metavar="FILE", help="also write the JSON report ('-': standard "
                     "output, the text report then goes to standard error)")
    running = fuzz.add_argument_group("a gateway that is already configured")
    running.add_argument("--gateway-url", metavar="URL", help="fuzz this running gateway as it "
                         "is, no mocks started and no config loaded: its routes must be at the "
                         "document's paths, /<provider>/chat and /<provider>/completions")
    running.add_argument("--provider", action="append", metavar="SEGMENT",
                         help="the first path segment of its routes (repeatable; default llama2, "
                         "as in Kong's fixture)")
    add_gateway_arguments(fuzz)


def describe() -> dict[str, Any]:
    """The subcommand's help texts (kept here with its arguments)."""
    return {
        "help": "generate valid and invalid requests from fixtures/oas.yaml (schemathesis) and "
                "check every answer against the document: no 5xx, documented statuses and "
                "bodies, JSON 4xx errors",
        "description": textwrap.fill(
                       "Start the mock upstreams, load the gateway with a route per hosting at "
                       "the document's paths (/<hosting>/chat and /<hosting>/completions, each "
                       "the hosting's example pointed at its mock), or take a configured gateway "
                       "(--gateway-url), and send requests schemathesis generates from "
                       "fixtures/oas.yaml: valid ones and, in negative mode, invalid ones. An "
                       "example fails on a 5xx that is not the upstream's own, a status, content "
                       "type, header or body the document does not describe, a request the "
                       "document's gateway rules reject that is not answered 4xx, or a 4xx the "
                       "gateway made that is not JSON. Each failure comes with a curl command "
                       "that reproduces it (configured credentials masked). Exit status 0 when "
                       "no example fails, 1 when one does, 2 for a usage or configuration error. "
                       "The rules in full: docs/fuzz.md.", 90),
        "epilog": "examples:\n"
                  "  proxyproof fuzz                                 the bundled proxy + mocks\n"
                  "  proxyproof fuzz --kong-compat --max-examples 200 --seed 7\n"
                  "  proxyproof fuzz --hosting ollama --mode negative --json fuzz.json\n"
                  "  proxyproof fuzz --gateway kong --admin-url http://127.0.0.1:8001 \\\n"
                  "                  --proxy-url http://127.0.0.1:8000\n"
                  "  proxyproof fuzz --gateway-url http://127.0.0.1:8000 --provider llama2\n",
    }
