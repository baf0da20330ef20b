"""``proxyproof soak``: a bounded mix of normal, streaming, failing and hostile requests through a
gateway, counted by outcome, with the gateway's resources after warm-up and at the end.

Exit status: 0 when no answer was an unexpected 5xx and every well-formed request was answered,
1 otherwise, 2 for a usage or configuration error."""

from __future__ import annotations

import argparse
import json
import sys

from proxyproof.check import (
    UsageError,
    add_gateway_arguments,
    gateway_from,
    positive_number,
    user_config_from,
)


def run_soak_command(args: argparse.Namespace) -> int:
    from proxyproof.harness.adapters import GatewayError
    from proxyproof.harness.catalogue import load_catalogue
    from proxyproof.harness.resources import process_resources
    from proxyproof.harness.runner import MockPlacement
    from proxyproof.harness.soak import as_text, run_soak
    from proxyproof.harness.user_routes import UserConfigError

    user_config = user_config_from(args)
    gateway = gateway_from(args)
    measure = (lambda: process_resources(args.pid)) if args.pid else None
    print(f"soaking {gateway.name} for {args.duration:g} s at {args.rate:g} requests/s…",
          file=sys.stderr, flush=True)
    try:
        report = run_soak(gateway, load_catalogue(), args.duration, args.rate, measure=measure,
                          seed=args.seed, user_config=user_config,
                          mocks=MockPlacement(args.mock_bind, args.mock_host))
    except UserConfigError as error:
        raise UsageError(f"{args.config}: {error}") from None
    except (GatewayError, ValueError) as error:
        raise UsageError(str(error)) from None
    finally:
        gateway.close()
    print(json.dumps(report.as_dict(), indent=2) if args.json else as_text(report))
    return 0 if report.ok else 1


def add_arguments(soak: argparse.ArgumentParser) -> None:
    load = soak.add_argument_group("the load")
    load.add_argument("--duration", type=positive_number, default=30.0, metavar="SECONDS",
                      help="how long to send, warm-up included (default 30)")
    load.add_argument("--rate", type=positive_number, default=20.0, metavar="PER_SECOND",
                      help="requests started per second (default 20; at most 64 in flight)")
    load.add_argument("--seed", type=int, default=0, help="the mix's random seed (default 0)")
    load.add_argument("--pid", type=int, metavar="PID", help="a local gateway process to "
                      "measure (memory, descriptors): for --gateway kong or manual")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    add_gateway_arguments(soak)
